// The resampling kernels (src/image/resample.cpp): the portable and the AVX2 builds give the
// same bytes, a region gives the pixels of the whole output, and both equal Pillow's resize on
// random sizes, scales and boxes (the reference crops in preprocess_test.cpp cover real photos).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mll/image/image.hpp"
#include "resample.hpp"
#include "run_command.hpp"
#include "test_paths.hpp"

namespace mll::image {
namespace {

using detail::Box;
using detail::Kernels;

struct Case {
  RgbImage in;
  Box box;
  int out_width = 0, out_height = 0;
  Interpolation interpolation = Interpolation::kBicubic;
};

std::string describe(const Case& c) {
  return std::to_string(c.in.width()) + "x" + std::to_string(c.in.height()) + " box (" +
         std::to_string(c.box.x0) + "," + std::to_string(c.box.y0) + "," +
         std::to_string(c.box.x1) + "," + std::to_string(c.box.y1) + ") to " +
         std::to_string(c.out_width) + "x" + std::to_string(c.out_height) +
         (c.interpolation == Interpolation::kBicubic ? " bicubic" : " bilinear");
}

// Noise with smooth areas and hard edges, so that clamping and negative lobes are exercised.
RgbImage random_image(int width, int height, std::mt19937& rng) {
  RgbImage image(width, height);
  std::uniform_int_distribution<int> byte(0, 255);
  const int base = byte(rng);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width * 3; ++x) {
      image.row(y)[x] = static_cast<std::uint8_t>((x / 3 + y) % 17 < 8 ? byte(rng)
                                                  : ((x / 3) * 7 + y * 3 + base) % 256 < 128 ? 0
                                                                                             : 255);
    }
  }
  return image;
}

// Sizes around the strip height (8) and the kernels' block widths (8 and 32 values), shrinking,
// enlarging, keeping one axis, and sub-boxes as the decoder's DCT scaling gives.
std::vector<Case> random_cases(int count) {
  std::mt19937 rng(20261202);
  std::uniform_int_distribution<int> in_size(1, 300), out_size(1, 260), coin(0, 3);
  std::vector<Case> cases;
  for (int i = 0; i < count; ++i) {
    Case c;
    const int w = in_size(rng), h = in_size(rng);
    c.in = random_image(w, h, rng);
    c.out_width = coin(rng) == 0 ? w : out_size(rng);
    c.out_height = coin(rng) == 0 ? h : out_size(rng);
    c.box = {0.0f, 0.0f, static_cast<float>(w), static_cast<float>(h)};
    if (coin(rng) == 0) {
      std::uniform_real_distribution<float> frac(0.0f, 0.3f);
      c.box = {w * frac(rng), h * frac(rng), w * (1.0f - frac(rng)), h * (1.0f - frac(rng))};
    }
    c.interpolation = coin(rng) == 0 ? Interpolation::kBilinear : Interpolation::kBicubic;
    cases.push_back(std::move(c));
  }
  return cases;
}

RgbImage resample(const Case& c, Kernels kernels) {
  RgbImage out(c.out_width, c.out_height);
  detail::resample_region(c.in, c.box, c.out_width, c.out_height, c.interpolation, 0, 0,
                          c.out_width, c.out_height, out.data(), out.stride(), kernels);
  return out;
}

TEST(ImageResample, PortableAndAvx2KernelsGiveTheSameBytes) {
  if (!detail::has_avx2_kernels())
    GTEST_SKIP() << "this CPU has no AVX2 (or the build is not x86-64)";
  for (const Case& c : random_cases(300)) {
    SCOPED_TRACE(describe(c));
    ASSERT_EQ(resample(c, Kernels::kPortable), resample(c, Kernels::kAvx2));
  }
}

TEST(ImageResample, ARegionHasThePixelsOfTheWholeOutput) {
  std::mt19937 rng(7);
  for (const Case& c : random_cases(120)) {
    SCOPED_TRACE(describe(c));
    const RgbImage whole = resample(c, Kernels::kBest);
    std::uniform_int_distribution<int> xs(0, c.out_width), ys(0, c.out_height);
    int x0 = xs(rng), x1 = xs(rng), y0 = ys(rng), y1 = ys(rng);
    if (x0 > x1) std::swap(x0, x1);
    if (y0 > y1) std::swap(y0, y1);
    // A destination wider than the region, with guard bytes that must stay untouched.
    const std::size_t stride = static_cast<std::size_t>(x1 - x0) * 3 + 5;
    std::vector<std::uint8_t> dst(stride * static_cast<std::size_t>(y1 - y0) + 5, 0xA5);
    detail::resample_region(c.in, c.box, c.out_width, c.out_height, c.interpolation, x0, y0, x1, y1,
                            dst.data(), stride);
    for (int y = y0; y < y1; ++y) {
      const std::uint8_t* got = dst.data() + (y - y0) * stride;
      ASSERT_EQ(0, std::memcmp(got, whole.row(y) + x0 * 3, static_cast<std::size_t>(x1 - x0) * 3))
          << "row " << y << " of region x " << x0 << ".." << x1;
      for (std::size_t g = static_cast<std::size_t>(x1 - x0) * 3; g < stride; ++g) {
        ASSERT_EQ(got[g], 0xA5) << "byte past the region written, row " << y;
      }
    }
  }
}

TEST(ImageResample, EqualsPillowOnRandomSizesScalesAndBoxes) {
  if (std::system("/usr/bin/python3 -c 'import PIL' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-pil is not installed";
  }
  const test::ScratchDir dir;
  const std::vector<Case> cases = random_cases(200);
  nlohmann::json manifest = nlohmann::json::array();
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const std::string in = dir / ("in" + std::to_string(i) + ".rgb");
    std::ofstream(in, std::ios::binary)
        .write(reinterpret_cast<const char*>(c.in.data()),
               static_cast<std::streamsize>(c.in.size_bytes()));
    manifest.push_back(
        {{"input", in},
         {"width", c.in.width()},
         {"height", c.in.height()},
         {"out_width", c.out_width},
         {"out_height", c.out_height},
         {"box", {c.box.x0, c.box.y0, c.box.x1, c.box.y1}},
         {"filter", c.interpolation == Interpolation::kBicubic ? "bicubic" : "bilinear"},
         {"output", dir / ("out" + std::to_string(i) + ".rgb")}});
  }
  std::ofstream(dir / "cases.json") << manifest.dump();
  const auto r = test::run_command("/usr/bin/python3 " + test::source_dir() +
                                       "/tests/unit/image/pillow_resize.py " + (dir / "cases.json"),
                                   dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE(describe(c));
    std::ifstream in(manifest[i]["output"].get<std::string>(), std::ios::binary);
    std::vector<char> pillow((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
    const RgbImage mine = resample(c, Kernels::kBest);
    ASSERT_EQ(pillow.size(), mine.size_bytes());
    EXPECT_EQ(0, std::memcmp(pillow.data(), mine.data(), mine.size_bytes()));
  }
}

}  // namespace
}  // namespace mll::image
