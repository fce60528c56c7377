#include "mll/core/linalg.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "mll/core/error.hpp"

// OpenBLAS's thread control, declared weak so that mll links against any CBLAS: with another
// BLAS the symbol is absent and set_threads does nothing.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" int openblas_get_num_threads() __attribute__((weak));

namespace mll::linalg {
namespace {

void sgemm(const float* a, std::int64_t m, const float* b, std::int64_t n, std::int64_t k,
           float* c) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, a, static_cast<int>(k), b, static_cast<int>(k), 0.0f, c,
              static_cast<int>(n));
}

}  // namespace

void matmul_nt(const float* a, std::int64_t m, const float* b, std::int64_t n, std::int64_t k,
               float* c) {
  constexpr auto kMax = std::numeric_limits<int>::max();
  MLL_CHECK(m >= 0 && n >= 0 && k >= 0 && m <= kMax && n <= kMax && k <= kMax,
            "matrix sizes out of BLAS range: ", m, "x", n, "x", k);
  if (m == 0 || n == 0) return;
  if (k == 0) {
    std::fill_n(c, m * n, 0.0f);
    return;
  }
  sgemm(a, m, b, n, k, c);
}

namespace {

// An upper bound of ||x||: the squares summed in float over independent lanes (which the
// compiler vectorises: a double sum in one chain cost as much as the product's argmax), raised by
// the bound of that sum's rounding.
double norm_bound(const float* x, std::int64_t k) noexcept {
  constexpr std::int64_t kLanes = 16;
  float lane[kLanes] = {};
  const std::int64_t wide = k / kLanes * kLanes;
  for (std::int64_t t = 0; t < wide; t += kLanes) {
    for (std::int64_t l = 0; l < kLanes; ++l) lane[l] += x[t + l] * x[t + l];
  }
  double sum = 0.0;
  for (const float v : lane) sum += v;
  for (std::int64_t t = wide; t < k; ++t) sum += static_cast<double>(x[t]) * x[t];
  const double gamma = static_cast<double>(k + 1) * std::numeric_limits<float>::epsilon();
  return std::sqrt(sum * (1.0 + gamma)) * (1.0 + 1e-6);
}

double dot(const float* x, const float* y, std::int64_t k) noexcept {
  double sum = 0.0;
  for (std::int64_t t = 0; t < k; ++t) sum += static_cast<double>(x[t]) * y[t];
  return sum;
}

}  // namespace

std::int64_t first_max(const float* x, std::int64_t n) noexcept {
  constexpr std::int64_t kLanes = 16;
  // The maximum over independent lanes (which the compiler vectorises), then the first position
  // holding it.
  float lane[kLanes];
  const std::int64_t wide = n / kLanes * kLanes;
  for (std::int64_t l = 0; l < kLanes; ++l) lane[l] = x[0];
  for (std::int64_t j = 0; j < wide; j += kLanes) {
    for (std::int64_t l = 0; l < kLanes; ++l) lane[l] = x[j + l] > lane[l] ? x[j + l] : lane[l];
  }
  float top = lane[0];
  for (std::int64_t l = 1; l < kLanes; ++l) top = lane[l] > top ? lane[l] : top;
  for (std::int64_t j = wide; j < n; ++j) top = x[j] > top ? x[j] : top;
  std::int64_t first = 0;
  while (first < n && !(x[first] == top)) ++first;
  if (first == n) first = std::max_element(x, x + n) - x;  // NaN: its own rule
  return first;
}

void first_argmax_nt(const float* a, std::int64_t m, const float* b, std::int64_t n, std::int64_t k,
                     const float* c, std::int32_t* out) noexcept {
  if (n <= 0) return;
  double b_norm = 0.0;
  for (std::int64_t j = 0; j < n; ++j) b_norm = std::max(b_norm, norm_bound(b + j * k, k));
  // |computed - exact| <= gamma_k * sum_t |a_t b_t| <= gamma_k ||a_i|| ||b_j|| for any order of
  // summation, with or without FMA (Higham, Accuracy and Stability of Numerical Algorithms, 3.1).
  // Two entries each that far off are within twice it of each other; the margin covers the
  // rounding of this bound itself.
  const double u = std::numeric_limits<float>::epsilon() / 2;
  const double gamma = static_cast<double>(k) * u / (1.0 - static_cast<double>(k) * u);
  for (std::int64_t i = 0; i < m; ++i) {
    const float* row = c + i * n;
    const std::int64_t first = first_max(row, n);
    const float top = row[first];
    if (!std::isfinite(top)) {
      out[i] = static_cast<std::int32_t>(first);
      continue;
    }
    const double tolerance = 2.0 * gamma * norm_bound(a + i * k, k) * b_norm * (1.0 + 1e-6);
    // Rounded down, so that no entry within the tolerance is left out.
    const float floor = std::nextafter(static_cast<float>(static_cast<double>(top) - tolerance),
                                       -std::numeric_limits<float>::infinity());
    std::int64_t near = 0;
    for (std::int64_t j = 0; j < n; ++j) near += row[j] >= floor ? 1 : 0;
    std::int64_t best = first;
    if (near > 1) {
      double best_value = -std::numeric_limits<double>::infinity();
      for (std::int64_t j = 0; j < n; ++j) {
        if (!(row[j] >= floor)) continue;
        const double value = dot(a + i * k, b + j * k, k);
        if (value > best_value) {
          best_value = value;
          best = j;
        }
      }
    }
    out[i] = static_cast<std::int32_t>(best);
  }
}

void set_threads(int n) noexcept {
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(std::max(1, n));
}

int threads() noexcept {
  return openblas_get_num_threads != nullptr ? std::max(1, openblas_get_num_threads()) : 1;
}

}  // namespace mll::linalg
