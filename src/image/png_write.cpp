#include <png.h>

#include <cstring>

#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/image/image.hpp"

namespace mll::image {

void write_png(const std::string& path, const RgbImage& image) {
  MLL_CHECK(!image.empty(), "cannot write an empty image to ", path);
  fs::AtomicOutput output(path);
  // libpng's simplified API: no setjmp, errors come back as a return value and a message.
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.width());
  png.height = static_cast<png_uint_32>(image.height());
  png.format = PNG_FORMAT_RGB;
  const int ok = png_image_write_to_file(&png, output.temp_path().c_str(), 0, image.data(),
                                         static_cast<png_int_32>(image.stride()), nullptr);
  if (!ok) {
    const std::string message = png.message;
    png_image_free(&png);
    MLL_THROW(IoError, path, ": cannot write PNG: ", message);
  }
  png_image_free(&png);
  output.commit();
}

}  // namespace mll::image
