#include "mll/store/half.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MLL_HAVE_F16C_PATH 1
#endif

namespace mll::store {
namespace {

void convert_scalar(const std::uint16_t* half, std::size_t count, float* out) noexcept {
  for (std::size_t i = 0; i < count; ++i) out[i] = half_to_float(half[i]);
}

#ifdef MLL_HAVE_F16C_PATH
// Compiled for F16C whatever the build's target, and only called after the CPU said it has it.
__attribute__((target("avx,f16c"))) void convert_f16c(const std::uint16_t* half, std::size_t count,
                                                      float* out) noexcept {
  std::size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(half + i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(bits));
  }
  convert_scalar(half + i, count - i, out + i);
}

bool cpu_has_f16c() noexcept {
  static const bool has = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
  return has;
}
#endif

}  // namespace

void half_to_float_n(const std::uint16_t* half, std::size_t count, float* out) noexcept {
#ifdef MLL_HAVE_F16C_PATH
  if (cpu_has_f16c()) {
    convert_f16c(half, count, out);
    return;
  }
#endif
  convert_scalar(half, count, out);
}

}  // namespace mll::store
