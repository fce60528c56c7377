// Decoded images and the JPEG/PNG/WebP decoder.
//
// Decoding reproduces what Pillow 9.4 returns for Image.open(path).convert("RGB"), because the
// models were evaluated on exactly those pixels (docs/preprocessing.md lists every conversion).
// EXIF orientation is deliberately NOT applied: Pillow's open() ignores it too.
// Nothing here is collective. Every function is thread-safe (no shared state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mll::image {

// An 8-bit RGB image: rows top to bottom, pixels left to right, channels interleaved (R, G, B),
// no row padding. This is also the layout of a uint8 crop in the preprocessing cache.
class RgbImage {
 public:
  RgbImage() = default;
  // A black image. Throws UsageError when a side is negative.
  RgbImage(int width, int height);
  // Takes ownership of `pixels`. Throws UsageError unless pixels.size() == width * height * 3.
  RgbImage(int width, int height, std::vector<std::uint8_t> pixels);

  int width() const noexcept { return width_; }
  int height() const noexcept { return height_; }
  bool empty() const noexcept { return width_ == 0 || height_ == 0; }
  std::size_t size_bytes() const noexcept { return pixels_.size(); }
  std::size_t stride() const noexcept { return static_cast<std::size_t>(width_) * 3; }

  const std::uint8_t* data() const noexcept { return pixels_.data(); }
  std::uint8_t* data() noexcept { return pixels_.data(); }
  const std::uint8_t* row(int y) const noexcept { return pixels_.data() + y * stride(); }
  std::uint8_t* row(int y) noexcept { return pixels_.data() + y * stride(); }
  const std::vector<std::uint8_t>& pixels() const noexcept { return pixels_; }

  friend bool operator==(const RgbImage& a, const RgbImage& b) {
    return a.width_ == b.width_ && a.height_ == b.height_ && a.pixels_ == b.pixels_;
  }
  friend bool operator!=(const RgbImage& a, const RgbImage& b) { return !(a == b); }

 private:
  int width_ = 0;
  int height_ = 0;
  std::vector<std::uint8_t> pixels_;
};

enum class ImageFormat { kJpeg, kPng, kWebp };

// The format named by the first bytes, or nullopt for anything that is not JPEG, PNG or WebP.
std::optional<ImageFormat> detect_format(const void* data, std::size_t size) noexcept;

struct DecodeOptions {
  // 0 (the default) decodes at full resolution: the exact mode. A positive value lets a JPEG be
  // decoded at 1/2, 1/4 or 1/8 scale in the DCT domain (libjpeg's scale_denom), choosing the
  // smallest scale whose shorter side is still >= this many pixels. Much faster on large photos;
  // the pixels then differ from Pillow's (measured loss in docs/preprocessing.md). PNG ignores it.
  int jpeg_min_short_side = 0;
};

// A decoded image with the size of the file's image, which differs from image's size only when
// DecodeOptions allowed a reduced-scale JPEG decode. Geometry (resize sizes, crop offsets) is
// computed from the source size so that a reduced decode frames the same region.
struct Decoded {
  RgbImage image;
  int source_width = 0;
  int source_height = 0;
  int scale_denom = 1;  // image is the source scaled by 1 / scale_denom (sides rounded up)
};

// Decodes a JPEG, PNG or (still) WebP file into RGB as Pillow's Image.open(path).convert("RGB")
// does.
// Throws DataError (naming the file and what is wrong) for a missing, empty, truncated, corrupt or
// unsupported file, or one larger than Pillow's decompression-bomb limit (178,956,970 pixels);
// IoError when reading fails.
RgbImage decode_file(const std::string& path);
Decoded decode_file(const std::string& path, const DecodeOptions& options);

// The same for bytes already in memory; `name` is used in error messages.
RgbImage decode_memory(std::string_view bytes, const std::string& name);
Decoded decode_memory(std::string_view bytes, const std::string& name,
                      const DecodeOptions& options);

}  // namespace mll::image

namespace mll::image {

// Writes an 8-bit RGB PNG (via a temporary name and rename). Used for synthetic probe and task
// images and for test fixtures. Throws IoError when the file cannot be written, InternalError
// for an empty image.
void write_png(const std::string& path, const RgbImage& image);

}  // namespace mll::image
