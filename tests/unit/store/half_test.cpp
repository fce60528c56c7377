#include "mll/store/half.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace mll::store {
namespace {

std::uint32_t bits_of(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

bool is_nan_half(std::uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }

TEST(Half, EveryHalfRoundTripsExactly) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const auto half = static_cast<std::uint16_t>(h);
    const float f = half_to_float(half);
    EXPECT_EQ(float_to_half(f), half) << std::hex << h;
    if (is_nan_half(half)) {
      EXPECT_TRUE(std::isnan(f)) << std::hex << h;
    }
  }
}

TEST(Half, KnownValues) {
  EXPECT_EQ(float_to_half(0.0f), 0x0000);
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(-2.0f), 0xc000);
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_half(0.333251953125f), 0x3555);
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(half_to_float(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(bits_of(half_to_float(0x8000)), 0x80000000u);
}

TEST(Half, InfinityNanAndOverflow) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(float_to_half(inf), 0x7c00);
  EXPECT_EQ(float_to_half(-inf), 0xfc00);
  EXPECT_EQ(float_to_half(1e10f), 0x7c00);
  EXPECT_EQ(float_to_half(-1e10f), 0xfc00);
  EXPECT_EQ(float_to_half(65519.996f), 0x7bff);  // below the tie: rounds down
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);    // the tie: to even = infinity
  EXPECT_TRUE(is_nan_half(float_to_half(std::numeric_limits<float>::quiet_NaN())));
  // A NaN whose payload is only in the low bits must not become infinity.
  std::uint32_t low_payload = 0x7f800001u;
  float nan;
  std::memcpy(&nan, &low_payload, sizeof nan);
  EXPECT_TRUE(is_nan_half(float_to_half(nan)));
  EXPECT_TRUE(std::isinf(half_to_float(0x7c00)));
}

TEST(Half, TiesRoundToEven) {
  // 1 + 2^-11 lies halfway between 1 (even) and 1 + 2^-10 (odd): rounds to 1.
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  // 1 + 3 * 2^-11 lies halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even): rounds up.
  EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  // Subnormal ties: 0.5 and 1.5 units of 2^-24.
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(float_to_half(std::ldexp(3.0f, -25)), 0x0002);
  EXPECT_EQ(float_to_half(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
}

// Between every two adjacent finite halves: the midpoint goes to the even one, a float just
// either side of it to the nearer one. This covers every exponent, subnormals included.
TEST(Half, EveryMidpointAndItsNeighbours) {
  for (std::uint16_t h = 0; h < 0x7bff; ++h) {
    const float lo = half_to_float(h);
    const float hi = half_to_float(static_cast<std::uint16_t>(h + 1));
    const float mid = static_cast<float>((static_cast<double>(lo) + hi) / 2);  // exact
    const std::uint16_t even = (h & 1) ? static_cast<std::uint16_t>(h + 1) : h;
    ASSERT_EQ(float_to_half(mid), even) << std::hex << h;
    ASSERT_EQ(float_to_half(std::nextafter(mid, 0.0f)), h) << std::hex << h;
    ASSERT_EQ(float_to_half(std::nextafter(mid, 1e6f)), h + 1) << std::hex << h;
    ASSERT_EQ(float_to_half(-mid), even | 0x8000) << std::hex << h;
  }
}

// Random floats against a reference: the nearest half by search over all finite halves.
TEST(Half, RandomFloatsMatchNearestHalf) {
  std::vector<float> table;
  for (std::uint16_t h = 0; h <= 0x7bff; ++h) table.push_back(half_to_float(h));
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::uint32_t> any(0, 0x477fefffu);  // below the overflow tie
  for (int i = 0; i < 200000; ++i) {
    const std::uint32_t b = any(rng);
    float f;
    std::memcpy(&f, &b, sizeof f);
    auto it = std::lower_bound(table.begin(), table.end(), f);
    std::size_t index = static_cast<std::size_t>(it - table.begin());
    const double x = f;
    if (index > 0 && (index == table.size() || x - table[index - 1] < table[index] - x ||
                      (x - table[index - 1] == table[index] - x && (index - 1) % 2 == 0))) {
      --index;
    }
    ASSERT_EQ(float_to_half(f), index) << f;
  }
}

// The bulk conversion (the CPU's instruction where it has one) agrees bit for bit with the scalar
// one on every half but the NaNs, which stay NaNs; odd counts exercise the tail.
TEST(Half, BulkConversionEqualsTheScalarOne) {
  std::vector<std::uint16_t> all(65536 + 5);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint16_t>(i * 40503u);
  std::vector<float> bulk(all.size());
  half_to_float_n(all.data(), all.size(), bulk.data());
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (is_nan_half(all[i])) {
      EXPECT_TRUE(std::isnan(bulk[i])) << std::hex << all[i];
    } else {
      EXPECT_EQ(bits_of(bulk[i]), bits_of(half_to_float(all[i]))) << std::hex << all[i];
    }
  }
  for (std::size_t n = 0; n < 20; ++n) {
    std::vector<float> part(n, -1.0f);
    half_to_float_n(all.data() + 3, n, part.data());
    for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(bits_of(part[i]), bits_of(bulk[i + 3]));
  }
}

}  // namespace
}  // namespace mll::store
