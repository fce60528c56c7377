// The resampling kernels in AVX2 (this file alone is compiled with -mavx2; resample.cpp calls it
// only on CPUs that have AVX2). The portable build of the same kernels stayed at about half of
// labeling's per-image cost: the compiler spilled the accumulators and widened bytes lane by
// lane (docs/benchmarks.md, "Resampling with AVX2").
#include <immintrin.h>

#include "resample_kernels.hpp"

namespace mll::image::detail {
namespace {

struct Avx2 {
  using Acc = __m256i;
  static Acc start() { return _mm256_set1_epi32(kHalf); }
  static void multiply_add(Acc& acc, const std::uint8_t* p, std::int32_t weight) {
    const __m256i wide = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(wide, _mm256_set1_epi32(weight)));
  }
  // Saturating packs to int16 then uint8 are exactly the clamp to 0..255; they work per
  // 128-bit half, so the two halves' first four bytes are joined at the end.
  static void store(const Acc& acc, std::uint8_t* out) {
    __m256i v = _mm256_srai_epi32(acc, kPrecisionBits);
    v = _mm256_packs_epi32(v, v);
    v = _mm256_packus_epi16(v, v);
    const __m128i bytes =
        _mm_unpacklo_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out), bytes);
  }
};

}  // namespace

void horizontal_strip_avx2(const Taps& taps, int col_first, int width, const std::uint8_t* strip,
                           std::uint8_t* values) {
  horizontal_strip<Avx2>(taps, col_first, width, strip, values);
}

void vertical_row_avx2(const std::int32_t* k, int count, const std::uint8_t* rows,
                       std::size_t stride, std::size_t values, std::uint8_t* out) {
  vertical_row<Avx2>(k, count, rows, stride, values, out);
}

}  // namespace mll::image::detail
