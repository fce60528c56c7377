// The two inner loops of Pillow-compatible resampling, written once over a lane type `Ops` and
// compiled twice: portable C++ (resample.cpp) and AVX2 (resample_avx2.cpp, the only file built
// with -mavx2, chosen at run time). Private to src/image.
//
// Ops provides, for 8 lanes of int32: `Acc`, `start()` (every lane one half, as Pillow's
// accumulators), `multiply_add(acc, p, weight)` (acc += 8 bytes at p, widened, times weight) and
// `store(acc, out)` (8 bytes: each lane shifted by kPrecisionBits and clamped to 0..255).
// Everything here is integer arithmetic, so both builds give the same bytes, and the same bytes
// as Pillow. Only <cstddef>/<cstdint> are included, and everything below the declarations has
// internal linkage: an inline function with external linkage would be emitted, built for AVX2,
// by resample_avx2.cpp too, and the linker could keep that copy for the whole program (an
// illegal instruction on a CPU without AVX2). The test ImageAvx2Object.DefinesOnlyTheKernels
// checks the object file.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mll::image::detail {

constexpr int kPrecisionBits = 32 - 8 - 2;                 // Pillow's fractional bits of a weight
constexpr std::int32_t kHalf = 1 << (kPrecisionBits - 1);  // where accumulators start (rounding)
constexpr int kLanes = 8;
constexpr int kStrip = 8;                 // rows per strip of the horizontal pass
constexpr int kStripValues = kStrip * 3;  // one source column of a strip: 8 rows x RGB
static_assert(kStripValues == 3 * kLanes, "horizontal_strip holds a strip column in 3 Accs");

// Fixed-point weights of a run of outputs along one axis, as raw arrays.
struct Taps {
  const std::int32_t* k;  // ksize weights per output
  int ksize;
  const int* start;  // first source index of each output
  const int* count;  // number of source pixels it reads
};

// The AVX2 builds of the kernels below (resample_avx2.cpp); call only where the CPU has AVX2.
void horizontal_strip_avx2(const Taps& taps, int col_first, int width, const std::uint8_t* strip,
                           std::uint8_t* values);
void vertical_row_avx2(const std::int32_t* k, int count, const std::uint8_t* rows,
                       std::size_t stride, std::size_t values, std::uint8_t* out);

namespace {  // internal linkage (see the top of this file)

// An accumulator's result: the arithmetic shift, then the clamp to 0..255.
inline std::uint8_t shift_and_clamp(std::int32_t acc) {
  const std::int32_t x = acc >> kPrecisionBits;
  return static_cast<std::uint8_t>(x < 0 ? 0 : (x > 255 ? 255 : x));
}

// The horizontal pass over one transposed strip (source column c of the strip at
// strip + (c - col_first) * kStripValues): for each of `width` outputs, its kStripValues results
// to values + i * kStripValues (rows of the strip past the image's last hold stale values; the
// caller does not copy them).
template <class Ops>
inline void horizontal_strip(const Taps& taps, int col_first, int width, const std::uint8_t* strip,
                             std::uint8_t* values) {
  for (int i = 0; i < width; ++i) {
    const std::int32_t* k = taps.k + static_cast<std::size_t>(i) * taps.ksize;
    const std::uint8_t* p =
        strip + static_cast<std::size_t>(taps.start[i] - col_first) * kStripValues;
    typename Ops::Acc a0 = Ops::start(), a1 = Ops::start(), a2 = Ops::start();
    for (int t = 0, n = taps.count[i]; t < n; ++t, p += kStripValues) {
      Ops::multiply_add(a0, p, k[t]);
      Ops::multiply_add(a1, p + kLanes, k[t]);
      Ops::multiply_add(a2, p + 2 * kLanes, k[t]);
    }
    std::uint8_t* out = values + static_cast<std::size_t>(i) * kStripValues;
    Ops::store(a0, out);
    Ops::store(a1, out + kLanes);
    Ops::store(a2, out + 2 * kLanes);
  }
}

// One output row of the vertical pass: `values` bytes, each the sum over `count` rows of the
// intermediate (`stride` bytes apart, from `rows`), in blocks of four accumulators.
template <class Ops>
inline void vertical_row(const std::int32_t* k, int count, const std::uint8_t* rows,
                         std::size_t stride, std::size_t values, std::uint8_t* out) {
  constexpr std::size_t kBlock = 4 * kLanes;
  std::size_t v = 0;
  for (; v + kBlock <= values; v += kBlock) {
    typename Ops::Acc a0 = Ops::start(), a1 = Ops::start(), a2 = Ops::start(), a3 = Ops::start();
    const std::uint8_t* src = rows + v;
    for (int t = 0; t < count; ++t, src += stride) {
      Ops::multiply_add(a0, src, k[t]);
      Ops::multiply_add(a1, src + kLanes, k[t]);
      Ops::multiply_add(a2, src + 2 * kLanes, k[t]);
      Ops::multiply_add(a3, src + 3 * kLanes, k[t]);
    }
    Ops::store(a0, out + v);
    Ops::store(a1, out + v + kLanes);
    Ops::store(a2, out + v + 2 * kLanes);
    Ops::store(a3, out + v + 3 * kLanes);
  }
  for (; v + kLanes <= values; v += kLanes) {
    typename Ops::Acc a = Ops::start();
    const std::uint8_t* src = rows + v;
    for (int t = 0; t < count; ++t, src += stride) Ops::multiply_add(a, src, k[t]);
    Ops::store(a, out + v);
  }
  for (; v < values; ++v) {  // fewer than 8 values left: one lane at a time
    std::int32_t a = kHalf;
    const std::uint8_t* src = rows + v;
    for (int t = 0; t < count; ++t, src += stride) a += *src * k[t];
    out[v] = shift_and_clamp(a);
  }
}

}  // namespace
}  // namespace mll::image::detail
