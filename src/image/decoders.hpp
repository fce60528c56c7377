// Format-specific decoders behind decode_file/decode_memory. Private to the image module: the
// libjpeg, libpng and libwebp headers never leave src/image.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "mll/image/image.hpp"

namespace mll::image::detail {

// Pillow refuses images above twice Image.MAX_IMAGE_PIXELS (DecompressionBombError); so do we, so
// that a hostile header cannot make a worker allocate gigabytes.
inline constexpr std::uint64_t kMaxPixels = 2ull * 89478485ull;

// Throws DataError when a side is zero or the image exceeds kMaxPixels.
void check_dimensions(std::uint64_t width, std::uint64_t height, const std::string& name,
                      const char* format);

Decoded decode_jpeg(const std::uint8_t* data, std::size_t size, const std::string& name,
                    const DecodeOptions& options);
Decoded decode_png(const std::uint8_t* data, std::size_t size, const std::string& name);
Decoded decode_webp(const std::uint8_t* data, std::size_t size, const std::string& name);

}  // namespace mll::image::detail
