// IEEE 754 binary16 ("half") conversion, as stored in the label store's embedding datasets.
//
// Written out rather than taken from the compiler (_Float16 is not portable C++17) so that the
// stored bits never depend on the compiler or the CPU: float -> half rounds to nearest, ties to
// even (what numpy's astype(float16) does), overflow goes to infinity, NaN stays NaN with its top
// payload bits kept. half -> float is exact. Nothing here throws or is collective.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace mll::store {

inline std::uint16_t float_to_half(float value) noexcept {
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  const std::uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude >= 0x7f800000u) {  // infinity or NaN
    if (magnitude == 0x7f800000u) return sign | 0x7c00u;
    std::uint32_t payload = (magnitude >> 13) & 0x3ffu;
    if (payload == 0) payload = 0x200u;  // the payload lived in dropped bits: keep it a NaN
    return static_cast<std::uint16_t>(sign | 0x7c00u | payload);
  }
  // 65520 is halfway between the largest half (65504, odd mantissa) and 2^16: ties go to even,
  // which is infinity.
  if (magnitude >= 0x477ff000u) return sign | 0x7c00u;
  if (magnitude < 0x38800000u) {  // below 2^-14: a half subnormal (or zero)
    // At or below 2^-25 (half of the smallest subnormal) everything rounds to zero.
    if (magnitude <= 0x33000000u) return sign;
    const std::uint32_t exponent = magnitude >> 23;  // 102..112
    const std::uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126 - exponent;  // value / 2^-24 = mantissa >> shift
    std::uint32_t result = mantissa >> shift;
    const std::uint32_t rest = mantissa & ((1u << shift) - 1);
    const std::uint32_t halfway = 1u << (shift - 1);
    // A carry out of the mantissa gives 0x400, the smallest normal: the encoding stays right.
    if (rest > halfway || (rest == halfway && (result & 1u))) ++result;
    return static_cast<std::uint16_t>(sign | result);
  }
  // Normal: rebias the exponent (127 -> 15) and keep the top 10 mantissa bits; a rounding carry
  // propagates into the exponent, up to infinity, which is the correct result.
  std::uint32_t result = (magnitude >> 13) - (112u << 10);
  const std::uint32_t rest = magnitude & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (result & 1u))) ++result;
  return static_cast<std::uint16_t>(sign | result);
}

inline float half_to_float(std::uint16_t half) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1fu;
  const std::uint32_t mantissa = half & 0x3ffu;
  std::uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  } else {
    // Zero or subnormal: mantissa * 2^-24, exact in float.
    float value = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    if (sign) value = -value;
    return value;
  }
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// half_to_float over `count` values (readers convert whole blocks of embeddings). Uses the CPU's
// conversion instruction (x86 F16C) when it has one, which gives the same float for every value
// but a signalling NaN (it comes out quiet; stored rows are finite, so no stored value is one).
void half_to_float_n(const std::uint16_t* half, std::size_t count, float* out) noexcept;

}  // namespace mll::store
