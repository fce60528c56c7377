#include "mll/core/linalg.hpp"

#include <cblas.h>

#include <limits>

#include "mll/core/error.hpp"

namespace mll::linalg {

void matmul_nt(const float* a, std::int64_t m, const float* b, std::int64_t n, std::int64_t k,
               float* c) {
  constexpr auto kMax = std::numeric_limits<int>::max();
  MLL_CHECK(m >= 0 && n >= 0 && k >= 0 && m <= kMax && n <= kMax && k <= kMax,
            "matrix sizes out of BLAS range: ", m, "x", n, "x", k);
  if (m == 0 || n == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, a, static_cast<int>(k), b, static_cast<int>(k), 0.0f, c,
              static_cast<int>(n));
}

}  // namespace mll::linalg
