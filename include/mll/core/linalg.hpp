// The one matrix product mll needs on the CPU: scores = A * B^T (rows of embeddings against rows
// of embeddings), through the system BLAS (OpenBLAS on Debian), which stays private to core.
// Not collective; thread-safe (BLAS may use its own threads).
#pragma once

#include <cstdint>

namespace mll::linalg {

// c[m x n] = a[m x k] * b[n x k]^T, all row-major float32. Throws InternalError on bad sizes.
void matmul_nt(const float* a, std::int64_t m, const float* b, std::int64_t n, std::int64_t k,
               float* c);

}  // namespace mll::linalg
