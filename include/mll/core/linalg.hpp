// The one matrix product mll needs on the CPU: scores = A * B^T (rows of embeddings against rows
// of embeddings), through the system BLAS (OpenBLAS on Debian), which stays private to core.
// Not collective; thread-safe (BLAS may use its own threads).
#pragma once

#include <cstdint>

namespace mll::linalg {

// c[m x n] = a[m x k] * b[n x k]^T, all row-major float32. Throws InternalError on bad sizes.
// A row of c does not depend on the other rows of a: products of row blocks, of any sizes, equal
// the rows of the whole product bit for bit (tested), so callers may block and split freely.
void matmul_nt(const float* a, std::int64_t m, const float* b, std::int64_t n, std::int64_t k,
               float* c);

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
