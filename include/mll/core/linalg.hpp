// The one matrix product mll needs on the CPU: scores = A * B^T (rows of embeddings against rows
// of embeddings), through the system BLAS (OpenBLAS on Debian), which stays private to core.
// Not collective; thread-safe (BLAS may use its own threads).
#pragma once

#include <cstdint>

namespace mll::linalg {

// c[m x n] = a[m x k] * b[n x k]^T, all row-major float32. Throws InternalError on bad sizes.
// The last bits of a row of c may depend on the shape of the product it was computed in: BLAS
// picks its kernels by shape (OpenBLAS's Haswell kernels, used on AVX2 CPUs and those it does not
// know, round the same row differently in blocks of different sizes). Decisions that must not
// depend on blocking take first_argmax_nt.
void matmul_nt(const float* a, std::int64_t m, const float* b, std::int64_t n, std::int64_t k,
               float* c);

// The index of the first largest of x[0..n) (n >= 1), as std::max_element finds it for finite
// values (a NaN in x[0] follows std::max_element's rule), vectorised. Does not throw.
std::int64_t first_max(const float* x, std::int64_t n) noexcept;

// out[i] = the first j with the largest a_i . b_j, decided the same way whatever block the rows
// came in: `c` is matmul_nt's product of these rows; every entry of row i within twice the float
// product's rounding bound (k u ||a_i|| max_j ||b_j||) of the row's largest is recomputed in
// double precision in one fixed order, and the first largest of those wins. A row whose largest
// entry is not finite gets first_max of its row of `c`. Does not throw.
void first_argmax_nt(const float* a, std::int64_t m, const float* b, std::int64_t n, std::int64_t k,
                     const float* c, std::int32_t* out) noexcept;

// Caps the threads BLAS uses for one product at `n` (>= 1). OpenBLAS otherwise starts one per
// core of the machine, not per CPU this process may use (cpus.hpp). A no-op with a BLAS that has
// no such control. Does not throw.
void set_threads(int n) noexcept;
// BLAS's current thread cap (1 with a BLAS that has no such control). Does not throw.
int threads() noexcept;

// Sets the cap for a scope and restores the previous one. Does not throw.
class ScopedThreads {
 public:
  explicit ScopedThreads(int n) noexcept : previous_(threads()) { set_threads(n); }
  ~ScopedThreads() { set_threads(previous_); }
  ScopedThreads(const ScopedThreads&) = delete;
  ScopedThreads& operator=(const ScopedThreads&) = delete;

 private:
  int previous_;
};

}  // namespace mll::linalg
