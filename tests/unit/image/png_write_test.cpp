#include <gtest/gtest.h>

#include <filesystem>

#include "mll/core/error.hpp"
#include "mll/image/image.hpp"
#include "test_paths.hpp"

namespace mll::image {
namespace {

TEST(ImagePngWrite, RoundTripsExactly) {
  test::ScratchDir dir;
  RgbImage image(37, 23);
  for (int y = 0; y < image.height(); ++y) {
    for (int x = 0; x < image.width(); ++x) {
      std::uint8_t* p = image.row(y) + 3 * x;
      p[0] = static_cast<std::uint8_t>(x * 7);
      p[1] = static_cast<std::uint8_t>(y * 11);
      p[2] = static_cast<std::uint8_t>((x * y) % 251);
    }
  }
  write_png(dir / "a.png", image);
  EXPECT_EQ(decode_file(dir / "a.png"), image);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
  EXPECT_THROW(write_png(dir / "missing/a.png", image), IoError);
  EXPECT_THROW(write_png(dir / "b.png", RgbImage()), InternalError);
}

}  // namespace
}  // namespace mll::image
