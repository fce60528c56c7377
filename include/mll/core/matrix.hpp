// The one dense matrix value type of mll: embeddings (float: image, caption and class-text rows)
// and probabilities (double: images x classes). Row-major, owning its values; a plain struct so
// that any module can fill it without ceremony. Nothing here is collective or throws (beyond
// std::bad_alloc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mll {

template <typename T>
struct BasicMatrix {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<T> values;  // rows x cols, row-major

  // A rows x cols matrix of zeros. (No constructors: the struct stays an aggregate,
  // Matrix{rows, cols, values}.)
  static BasicMatrix zeros(std::int64_t r, std::int64_t c) {
    return BasicMatrix{r, c, std::vector<T>(static_cast<std::size_t>(r * c), T{})};
  }

  T* row(std::int64_t i) { return values.data() + i * cols; }
  const T* row(std::int64_t i) const { return values.data() + i * cols; }
  T& at(std::int64_t r, std::int64_t c) { return values[static_cast<std::size_t>(r * cols + c)]; }
  T at(std::int64_t r, std::int64_t c) const {
    return values[static_cast<std::size_t>(r * cols + c)];
  }
};

using Matrix = BasicMatrix<float>;    // embeddings
using MatrixD = BasicMatrix<double>;  // probabilities, fitted maps

}  // namespace mll
