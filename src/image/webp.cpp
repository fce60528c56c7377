// WebP decoding with libwebp (the library Pillow 9.4 links on Debian, 1.2.4), giving what
// Image.open(p).convert("RGB") gives (docs/preprocessing.md, "Decoding"): Pillow decodes a
// still WebP through WebPAnimDecoder, which runs WebPDecode with the default options (fancy
// upsampling) into RGBA without premultiplying, and convert("RGB") then drops alpha. Decoding
// straight to MODE_RGB runs the same conversion and leaves alpha out, so the colours are the same
// (tested against Pillow). Animated WebP is refused: which frame would be the image?
#include <webp/decode.h>

#include <vector>

#include "decoders.hpp"
#include "mll/core/error.hpp"

namespace mll::image::detail {
namespace {

const char* status_text(VP8StatusCode status) {
  switch (status) {
    case VP8_STATUS_OUT_OF_MEMORY:
      return "out of memory";
    case VP8_STATUS_INVALID_PARAM:
      return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR:
      return "corrupt bitstream";
    case VP8_STATUS_UNSUPPORTED_FEATURE:
      return "unsupported feature";
    case VP8_STATUS_SUSPENDED:
      return "suspended";
    case VP8_STATUS_USER_ABORT:
      return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA:
      return "truncated (data ends prematurely)";
    default:
      return "unknown error";
  }
}

// Frees what libwebp allocated for the output (nothing when the buffer is ours); never throws.
struct DecoderConfig {
  WebPDecoderConfig config{};
  ~DecoderConfig() { WebPFreeDecBuffer(&config.output); }
};

}  // namespace

Decoded decode_webp(const std::uint8_t* data, std::size_t size, const std::string& name) {
  DecoderConfig holder;
  WebPDecoderConfig& config = holder.config;
  if (!WebPInitDecoderConfig(&config)) {
    MLL_THROW(InternalError, name, ": libwebp version mismatch");
  }
  VP8StatusCode status = WebPGetFeatures(data, size, &config.input);
  if (status != VP8_STATUS_OK) {
    MLL_THROW(DataError, name, ": WebP header: ", status_text(status));
  }
  if (config.input.has_animation) {
    MLL_THROW(DataError, name, ": animated WebP is not supported (only still images)");
  }
  const auto width = static_cast<std::uint64_t>(config.input.width);
  const auto height = static_cast<std::uint64_t>(config.input.height);
  check_dimensions(width, height, name, "WebP");
  std::vector<std::uint8_t> pixels(width * height * 3);
  config.output.colorspace = MODE_RGB;
  config.output.is_external_memory = 1;
  config.output.u.RGBA.rgba = pixels.data();
  config.output.u.RGBA.stride = static_cast<int>(width * 3);
  config.output.u.RGBA.size = pixels.size();
  status = WebPDecode(data, size, &config);
  if (status != VP8_STATUS_OK) MLL_THROW(DataError, name, ": WebP: ", status_text(status));
  Decoded out;
  out.image = RgbImage(static_cast<int>(width), static_cast<int>(height), std::move(pixels));
  out.source_width = out.image.width();
  out.source_height = out.image.height();
  return out;
}

}  // namespace mll::image::detail
