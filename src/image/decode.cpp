#include <cstring>

#include "decoders.hpp"
#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/image/image.hpp"

namespace mll::image {

RgbImage::RgbImage(int width, int height) : width_(width), height_(height) {
  if (width < 0 || height < 0) MLL_THROW(UsageError, "image size ", width, "x", height);
  pixels_.assign(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3, 0);
}

RgbImage::RgbImage(int width, int height, std::vector<std::uint8_t> pixels)
    : width_(width), height_(height), pixels_(std::move(pixels)) {
  if (width < 0 || height < 0 ||
      pixels_.size() != static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3) {
    MLL_THROW(UsageError, "image size ", width, "x", height, " does not match ", pixels_.size(),
              " bytes of RGB pixels");
  }
}

std::optional<ImageFormat> detect_format(const void* data, std::size_t size) noexcept {
  const auto* bytes = static_cast<const unsigned char*>(data);
  static constexpr unsigned char kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff) {
    return ImageFormat::kJpeg;
  }
  if (size >= sizeof(kPng) && std::memcmp(bytes, kPng, sizeof(kPng)) == 0) return ImageFormat::kPng;
  if (size >= 12 && std::memcmp(bytes, "RIFF", 4) == 0 && std::memcmp(bytes + 8, "WEBP", 4) == 0) {
    return ImageFormat::kWebp;
  }
  return std::nullopt;
}

namespace {

// Names the formats people most often feed by mistake, so the message says what the file is.
const char* other_format_name(std::string_view bytes) {
  auto starts = [&](std::string_view magic) { return bytes.substr(0, magic.size()) == magic; };
  if (starts("GIF87a") || starts("GIF89a")) return "GIF";
  if (starts("BM")) return "BMP";
  if (starts(std::string_view("II*\0", 4)) || starts(std::string_view("MM\0*", 4))) return "TIFF";
  if (bytes.size() >= 12 && bytes.substr(4, 4) == "ftyp") return "HEIF/AVIF";
  return nullptr;
}

}  // namespace

namespace detail {

void check_dimensions(std::uint64_t width, std::uint64_t height, const std::string& name,
                      const char* format) {
  if (width == 0 || height == 0) {
    MLL_THROW(DataError, name, ": ", format, " image has zero size (", width, "x", height, ")");
  }
  if (width * height > kMaxPixels) {
    MLL_THROW(DataError, name, ": ", format, " image of ", width, "x", height,
              " pixels exceeds the limit of ", kMaxPixels, " pixels");
  }
}

}  // namespace detail

Decoded decode_memory(std::string_view bytes, const std::string& name,
                      const DecodeOptions& options) {
  if (bytes.empty()) MLL_THROW(DataError, name, ": empty file, not an image");
  const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  auto format = detect_format(data, bytes.size());
  if (!format) {
    if (const char* other = other_format_name(bytes)) {
      MLL_THROW(DataError, name, ": unsupported image format ", other,
                " (only JPEG, PNG and WebP)");
    }
    MLL_THROW(DataError, name, ": not a JPEG, PNG or WebP image (unrecognised header)");
  }
  if (*format == ImageFormat::kJpeg) return detail::decode_jpeg(data, bytes.size(), name, options);
  if (*format == ImageFormat::kWebp) return detail::decode_webp(data, bytes.size(), name);
  return detail::decode_png(data, bytes.size(), name);
}

RgbImage decode_memory(std::string_view bytes, const std::string& name) {
  return decode_memory(bytes, name, DecodeOptions{}).image;
}

Decoded decode_file(const std::string& path, const DecodeOptions& options) {
  // One read into memory: photos are small, and the in-memory source makes truncation an exact
  // end-of-buffer condition instead of a short read.
  const std::string bytes = fs::read_file(path);
  return decode_memory(bytes, path, options);
}

RgbImage decode_file(const std::string& path) { return decode_file(path, DecodeOptions{}).image; }

}  // namespace mll::image
