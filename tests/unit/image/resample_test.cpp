// The resampling kernels (src/image/resample.cpp): the portable and the AVX2 builds give the
// same bytes, a region gives the pixels of the whole output, and both equal Pillow's resize on
// random sizes, scales and boxes (the reference crops in preprocess_test.cpp cover real photos).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
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

// The case in words, with the box's floats exact (%a), so that a failure can be replayed.
std::string describe(const Case& c) {
  char box[160];
  std::snprintf(box, sizeof box, "(%a, %a, %a, %a)", c.box.x0, c.box.y0, c.box.x1, c.box.y1);
  return std::to_string(c.in.width()) + "x" + std::to_string(c.in.height()) + " box " + box +
         " to " + std::to_string(c.out_width) + "x" + std::to_string(c.out_height) +
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

// Every combination of small sides (one pixel, fewer values than a lane block, around the strip
// height of 8) in and out, full boxes: the edges of the kernels that random sizes rarely hit.
std::vector<Case> edge_cases(const std::vector<int>& in_sides, const std::vector<int>& out_sides) {
  std::mt19937 rng(3);
  std::vector<Case> cases;
  for (const int w : in_sides) {
    for (const int h : in_sides) {
      for (const int ow : out_sides) {
        for (const int oh : out_sides) {
          for (const auto interpolation : {Interpolation::kBicubic, Interpolation::kBilinear}) {
            Case c;
            c.in = random_image(w, h, rng);
            c.box = {0.0f, 0.0f, static_cast<float>(w), static_cast<float>(h)};
            c.out_width = ow;
            c.out_height = oh;
            c.interpolation = interpolation;
            cases.push_back(std::move(c));
          }
        }
      }
    }
  }
  return cases;
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

std::vector<Case> operator+(std::vector<Case> a, std::vector<Case> b) {
  for (Case& c : b) a.push_back(std::move(c));
  return a;
}

const std::vector<int> kSmallSides = {1, 2, 3, 7, 8, 9};

TEST(ImageResample, PortableAndAvx2KernelsGiveTheSameBytes) {
  if (!detail::has_avx2_kernels())
    GTEST_SKIP() << "this CPU has no AVX2 (or the build is not x86-64)";
  for (const Case& c : edge_cases(kSmallSides, {1, 2, 3, 8, 9}) + random_cases(300)) {
    SCOPED_TRACE(describe(c));
    ASSERT_EQ(resample(c, Kernels::kPortable), resample(c, Kernels::kAvx2));
  }
}

// The kernels each build runs on this CPU (the portable one everywhere).
std::vector<Kernels> kernels_here() {
  if (detail::has_avx2_kernels()) return {Kernels::kPortable, Kernels::kAvx2};
  return {Kernels::kPortable};
}

TEST(ImageResample, ARegionHasThePixelsOfTheWholeOutput) {
  constexpr std::size_t kGuard = 16;  // bytes before and after the destination
  constexpr std::uint8_t kUntouched = 0xA5;
  std::mt19937 rng(7);
  for (const Kernels kernels : kernels_here()) {
    for (const Case& c : edge_cases({1, 3, 8, 9}, {1, 3, 9}) + random_cases(120)) {
      SCOPED_TRACE(describe(c) + (kernels == Kernels::kAvx2 ? " (AVX2)" : " (portable)"));
      const RgbImage whole = resample(c, kernels);
      std::uniform_int_distribution<int> xs(0, c.out_width), ys(0, c.out_height);
      int x0 = xs(rng), x1 = xs(rng), y0 = ys(rng), y1 = ys(rng);
      if (x0 > x1) std::swap(x0, x1);
      if (y0 > y1) std::swap(y0, y1);
      // A destination wider than the region between guard bytes: only the region is written.
      const std::size_t values = static_cast<std::size_t>(x1 - x0) * 3;
      const std::size_t stride = values + 5;
      std::vector<std::uint8_t> buffer(kGuard + stride * static_cast<std::size_t>(y1 - y0) + kGuard,
                                       kUntouched);
      std::uint8_t* dst = buffer.data() + kGuard;
      detail::resample_region(c.in, c.box, c.out_width, c.out_height, c.interpolation, x0, y0, x1,
                              y1, dst, stride, kernels);
      std::vector<char> region(buffer.size(), 0);  // 1 where the region's bytes are
      for (int y = y0; y < y1; ++y) {
        const std::uint8_t* got = dst + (y - y0) * stride;
        ASSERT_EQ(0, std::memcmp(got, whole.row(y) + x0 * 3, values))
            << "row " << y << " of region x " << x0 << ".." << x1;
        std::fill_n(region.begin() + (got - buffer.data()), values, 1);
      }
      for (std::size_t b = 0; b < buffer.size(); ++b) {
        if (!region[b]) {
          ASSERT_EQ(buffer[b], kUntouched) << "byte " << b << " outside the region";
        }
      }
    }
  }
}

TEST(ImageResample, EqualsPillowOnRandomSizesScalesAndBoxes) {
  if (std::system("/usr/bin/python3 -c 'import PIL' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-pil is not installed";
  }
  const test::ScratchDir dir;
  const std::vector<Case> cases = edge_cases({1, 3, 8, 9}, {1, 3, 8, 9}) + random_cases(200);
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

// The AVX2 object must define nothing with external linkage but its two entry points: an
// inline function it emitted (built for AVX2) could be the copy the linker keeps for all of mll.
TEST(ImageAvx2Object, DefinesOnlyTheKernels) {
#if defined(MLL_IMAGE_AVX2_OBJECT)
  const test::ScratchDir dir;
  const auto r = test::run_command(
      std::string("nm --defined-only --extern-only -C '") + MLL_IMAGE_AVX2_OBJECT + "'", dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::vector<std::string> names;
  for (std::string line; std::getline(lines, line);) {
    // "<address> <type> <name>": the name may hold spaces (a demangled signature).
    const auto type = line.find(' ');
    if (type == std::string::npos || line.size() < type + 3) continue;
    names.push_back(line.substr(type + 3));
  }
  ASSERT_EQ(names.size(), 2u) << r.out;
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names[0].rfind("mll::image::detail::horizontal_strip_avx2(", 0), 0u) << r.out;
  EXPECT_EQ(names[1].rfind("mll::image::detail::vertical_row_avx2(", 0), 0u) << r.out;
#else
  GTEST_SKIP() << "no AVX2 object in this build (not x86-64)";
#endif
}

}  // namespace
}  // namespace mll::image
