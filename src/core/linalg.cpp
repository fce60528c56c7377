#include "mll/core/linalg.hpp"

#include <cblas.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "mll/core/error.hpp"

// OpenBLAS's thread control, declared weak so that mll links against any CBLAS: with another
// BLAS the symbol is absent and set_threads does nothing.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" int openblas_get_num_threads() __attribute__((weak));

namespace mll::linalg {
namespace {

// Twice OpenBLAS's small-matrix limit (10^6 multiply-adds), for a margin.
constexpr std::int64_t kSmallProduct = std::int64_t{1} << 21;

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
  if (static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) <=
      static_cast<double>(kSmallProduct)) {
    // OpenBLAS sends small products (up to 100^3 multiply-adds on AVX-512 CPUs) to other kernels
    // with other rounding. Zero rows that make the product large keep every row's values those
    // of the general kernel, whatever the size of the block it came in.
    const std::int64_t rows = std::max(m, kSmallProduct / (n * k) + 1);
    std::vector<float> padded_a(static_cast<std::size_t>(rows * k), 0.0f);
    std::vector<float> padded_c(static_cast<std::size_t>(rows * n));
    std::copy_n(a, m * k, padded_a.begin());
    sgemm(padded_a.data(), rows, b, n, k, padded_c.data());
    std::copy_n(padded_c.begin(), m * n, c);
    return;
  }
  sgemm(a, m, b, n, k, c);
}

void set_threads(int n) noexcept {
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(std::max(1, n));
}

int threads() noexcept {
  return openblas_get_num_threads != nullptr ? std::max(1, openblas_get_num_threads()) : 1;
}

}  // namespace mll::linalg
