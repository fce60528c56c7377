// Preprocessing equals torchvision 0.14 + Pillow 9.4 (open_clip's eval transform): uint8 crops
// bit for bit, normalised floats exactly.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/image/image.hpp"
#include "mll/image/preprocess.hpp"
#include "reference.hpp"

namespace mll::image {
namespace {

using test::image_data;
using test::image_reference;

PreprocessSpec spec_of(const nlohmann::json& c) {
  PreprocessSpec spec;
  spec.height = c.at("height");
  spec.width = c.at("width");
  spec.resize_mode = parse_resize_mode(c.at("resize_mode"));
  spec.interpolation = parse_interpolation(c.at("interpolation"));
  return spec;
}

std::string describe(const nlohmann::json& c) {
  return c.at("input").get<std::string>() + " " + std::to_string(c.at("height").get<int>()) + "x" +
         std::to_string(c.at("width").get<int>()) + " " + c.at("resize_mode").get<std::string>() +
         " " + c.at("interpolation").get<std::string>();
}

TEST(ImagePreprocess, CropsEqualTorchvisionBitForBit) {
  const auto& crops = image_reference().at("crops");
  ASSERT_GE(crops.size(), 10u);
  for (const auto& c : crops) {
    SCOPED_TRACE(describe(c));
    const RgbImage crop = resize_and_crop_u8(decode_file(image_data(c.at("input"))), spec_of(c));
    ASSERT_EQ(crop.width(), c.at("width").get<int>());
    ASSERT_EQ(crop.height(), c.at("height").get<int>());
    if (test::sha256_of(crop) == c.at("crop_sha256").get<std::string>()) continue;
    const RgbImage ref = decode_file(image_data(c.at("crop")));
    const auto d = test::pixel_diff(crop, ref);
    ADD_FAILURE() << "crop differs from torchvision's: max abs diff " << d.max << ", "
                  << d.differing << " of " << crop.size_bytes() << " values, mean " << d.mean;
  }
}

TEST(ImagePreprocess, NormalisedTensorsEqualTorchvision) {
  for (const auto& c : image_reference().at("crops")) {
    SCOPED_TRACE(describe(c));
    const PreprocessSpec spec = spec_of(c);  // CLIP mean/std, as in the reference
    const std::vector<float> x = preprocess(decode_file(image_data(c.at("input"))), spec);
    ASSERT_EQ(x.size(), 3u * spec.height * spec.width);
    double sum = 0, sum_sq = 0;
    for (float v : x) sum += v, sum_sq += double{v} * v;
    EXPECT_NEAR(sum, c.at("clip_sum").get<double>(), 1e-6 * x.size());
    EXPECT_NEAR(sum_sq, c.at("clip_sum_sq").get<double>(), 1e-6 * x.size());
    EXPECT_EQ(test::sha256_of(x.data(), x.size() * sizeof(float)),
              c.at("clip_f32_sha256").get<std::string>());
  }
}

TEST(ImagePreprocess, NormalisationTableEqualsTorchvisionForEveryByte) {
  // A 256 x 1 ramp covers every (channel, value): the float tensor is a function of those only.
  RgbImage ramp(256, 1);
  for (int v = 0; v < 256; ++v)
    ramp.data()[3 * v] = ramp.data()[3 * v + 1] = ramp.data()[3 * v + 2] = v;
  for (const auto& [name, lut] : image_reference().at("normalize_luts").items()) {
    SCOPED_TRACE(name);
    std::array<float, 3> mean{}, std{};
    for (int c = 0; c < 3; ++c) {
      mean[c] = lut.at("mean")[c].get<float>();
      std[c] = lut.at("std")[c].get<float>();
    }
    const std::string bytes = fs::read_file(image_data(lut.at("file")));
    ASSERT_EQ(bytes.size(), 3u * 256 * sizeof(float));
    std::vector<float> expected(3 * 256);
    std::memcpy(expected.data(), bytes.data(), bytes.size());
    const std::vector<float> ours = to_normalized_chw(ramp, mean, std);
    float max_diff = 0;
    int exact = 0;
    for (std::size_t i = 0; i < ours.size(); ++i) {
      max_diff = std::max(max_diff, std::fabs(ours[i] - expected[i]));
      exact += ours[i] == expected[i];
    }
    EXPECT_LE(max_diff, 1e-6f);
    EXPECT_EQ(exact, 3 * 256) << "max diff " << max_diff;
  }
}

TEST(ImagePreprocess, PreprocessIsCropThenNormalise) {
  const RgbImage image = decode_file(image_data("coffee.jpg"));
  PreprocessSpec spec = PreprocessSpec::square(160);
  spec.mean = {0.5f, 0.5f, 0.5f};
  spec.std = {0.5f, 0.5f, 0.5f};
  const RgbImage crop = resize_and_crop_u8(image, spec);
  EXPECT_EQ(preprocess(image, spec), to_normalized_chw(crop, spec.mean, spec.std));
  std::vector<float> slot(3 * 160 * 160 + 1, -7.0f);
  to_normalized_chw(crop, spec.mean, spec.std, slot.data());
  EXPECT_EQ(slot.back(), -7.0f);  // writes exactly 3 x H x W floats
  EXPECT_EQ(slot[0], (crop.data()[0] / 255.0f - 0.5f) / 0.5f);
}

TEST(ImagePreprocess, GeometryFollowsTorchvision) {
  // Resize(336) on 451x300: long side int(336 * 451 / 300) = 505; the crop offset
  // (505 - 336) / 2 = 84.5 rounds half to even, to 84 (half-up would say 85).
  CropPlan p = plan_crop(451, 300, PreprocessSpec::square(336));
  EXPECT_EQ(p.resized_width, 505);
  EXPECT_EQ(p.resized_height, 336);
  EXPECT_EQ(p.crop_left, 84);
  EXPECT_EQ(p.crop_top, 0);
  // 741x500 at 224: int(224 * 741 / 500) = int(331.968) = 331, truncated not rounded.
  p = plan_crop(741, 500, PreprocessSpec::square(224));
  EXPECT_EQ(p.resized_width, 331);
  EXPECT_EQ(p.crop_left, 54);  // 53.5 -> 54 (even)
  // Portrait.
  p = plan_crop(427, 640, PreprocessSpec::square(224));
  EXPECT_EQ(p.resized_width, 224);
  EXPECT_EQ(p.resized_height, 335);
  EXPECT_EQ(p.crop_top, 56);  // 55.5 -> 56
  // "longest" pads: the short side is centred with floor((crop - size) / 2) on the left/top.
  PreprocessSpec longest = PreprocessSpec::square(224);
  longest.resize_mode = ResizeMode::kLongest;
  p = plan_crop(427, 640, longest);
  EXPECT_EQ(p.resized_height, 224);
  EXPECT_EQ(p.resized_width, 149);  // round(427 / (640 / 224)) = round(149.45)
  EXPECT_EQ(p.crop_left, -37);
  PreprocessSpec squash = PreprocessSpec::square(224);
  squash.resize_mode = ResizeMode::kSquash;
  p = plan_crop(427, 640, squash);
  EXPECT_EQ(p.resized_width, 224);
  EXPECT_EQ(p.resized_height, 224);
  EXPECT_EQ(p.crop_left, 0);
}

TEST(ImagePreprocess, LongestModePadsWithFill) {
  const RgbImage image = decode_file(image_data("rocket.jpg"));  // 640x427, landscape
  PreprocessSpec spec = PreprocessSpec::square(64);
  spec.resize_mode = ResizeMode::kLongest;
  spec.fill = 200;
  const RgbImage crop = resize_and_crop_u8(image, spec);
  const CropPlan p = plan_crop(640, 427, spec);
  EXPECT_EQ(p.resized_width, 64);
  EXPECT_EQ(p.resized_height, 43);  // round(427 / 10)
  EXPECT_EQ(p.crop_top, -10);       // (64 - 43) // 2 rows on top, 11 below
  for (int x = 0; x < 3 * 64; ++x) {
    ASSERT_EQ(crop.row(9)[x], 200);
    ASSERT_EQ(crop.row(53)[x], 200);
  }
  PreprocessSpec black = spec;
  black.fill = 0;
  const RgbImage padded_black = resize_and_crop_u8(image, black);
  EXPECT_EQ(padded_black.row(9)[0], 0);
  EXPECT_EQ(0, std::memcmp(padded_black.row(10), crop.row(10), 43 * 3 * 64));
}

TEST(ImagePreprocess, ResizeToSameSizeIsIdentityAndWholeResizeMatchesCrop) {
  const RgbImage image = decode_file(image_data("astronaut_422.jpg"));
  EXPECT_EQ(resize(image, image.width(), image.height(), Interpolation::kBicubic), image);
  // Computing only the crop window gives the pixels of a full resize followed by a crop.
  const PreprocessSpec spec = PreprocessSpec::square(120);
  const CropPlan p = plan_crop(image.width(), image.height(), spec);
  const RgbImage full = resize(image, p.resized_width, p.resized_height, spec.interpolation);
  const RgbImage crop = resize_and_crop_u8(image, spec);
  for (int y = 0; y < 120; ++y) {
    ASSERT_EQ(0, std::memcmp(crop.row(y), full.row(y + p.crop_top) + 3 * p.crop_left, 3 * 120))
        << "row " << y;
  }
}

TEST(ImagePreprocess, FastJpegModeStaysCloseToExact) {
  // hubble.jpg is 701x611: at 64 px the fast mode decodes at 1/4 (153 px >= 2 x 64).
  PreprocessSpec spec = PreprocessSpec::square(64);
  const RgbImage exact = load_crop_u8(image_data("hubble.jpg"), spec);
  spec.fast_jpeg_decode = true;
  const Decoded scaled = decode_file(image_data("hubble.jpg"), decode_options_for(spec));
  EXPECT_EQ(scaled.scale_denom, 4);
  const RgbImage fast = resize_and_crop_u8(scaled, spec);
  EXPECT_EQ(fast, load_crop_u8(image_data("hubble.jpg"), spec));
  const auto d = test::pixel_diff(exact, fast);
  EXPECT_GT(d.differing, 0u);
  EXPECT_LT(d.mean, 3.0);  // same framing: a misplaced crop would differ by tens of levels
}

TEST(ImagePreprocess, InvalidSpecsAreUsageErrors) {
  EXPECT_THROW(parse_resize_mode("crop"), UsageError);
  EXPECT_THROW(parse_interpolation("lanczos"), UsageError);
  EXPECT_EQ(parse_resize_mode("longest"), ResizeMode::kLongest);
  EXPECT_STREQ(to_string(Interpolation::kBilinear), "bilinear");
  const RgbImage image(10, 10);
  PreprocessSpec spec = PreprocessSpec::square(0);
  EXPECT_THROW(preprocess(image, spec), UsageError);
  spec = PreprocessSpec::square(8);
  spec.std[1] = 0.0f;
  EXPECT_THROW(preprocess(image, spec), UsageError);
  EXPECT_THROW(preprocess(RgbImage(), PreprocessSpec::square(8)), DataError);
  EXPECT_THROW(resize(image, 0, 5, Interpolation::kBicubic), UsageError);
}

}  // namespace
}  // namespace mll::image
