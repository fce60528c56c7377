// Private to the synth module: random numbers, small dense matrices and the text-tower fit.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "mll/core/matrix.hpp"
#include "mll/tokenize/tokenizer.hpp"

namespace mll::synth::detail {

// SplitMix64 (Steele, Lea, Flood 2014). <random>'s distributions are implementation-defined, and
// the world must be the same wherever it is generated.
class Rng {
 public:
  explicit Rng(std::uint64_t state) noexcept : state_(state) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n); n > 0. The tiny modulo bias is irrelevant here.
  std::uint64_t below(std::uint64_t n) noexcept { return next() % n; }
  // Standard normal (Box-Muller).
  double normal() noexcept {
    const double u = 1.0 - uniform();  // (0, 1]
    const double v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
  }
  // Fisher-Yates.
  template <typename T>
  void shuffle(std::vector<T>& items) noexcept {
    for (std::size_t i = items.size(); i > 1; --i) {
      std::swap(items[i - 1], items[below(i)]);
    }
  }

 private:
  std::uint64_t state_;
};

// A stream for one named purpose, independent of every other stream of the same world.
inline std::uint64_t stream(std::uint64_t seed, const std::string& name) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL ^ seed;  // FNV-1a over the name, salted with the seed
  for (const unsigned char c : name) h = (h ^ c) * 0x100000001b3ULL;
  Rng mix(h);
  return mix.next();
}

// A `rows` x `cols` matrix (rows >= cols) with orthonormal columns, from Gram-Schmidt on a
// Gaussian draw.
MatrixD random_orthonormal(int rows, int cols, Rng& rng);

// The tokenizer every synthetic model declares: CLIP BPE, 77 tokens.
inline tokenize::TokenizerSpec clip_bpe_spec() {
  tokenize::TokenizerSpec spec;
  spec.kind = "clip-bpe";
  spec.context_length = 77;
  return spec;
}

// One training pair of the text tower: a text and the concept vector its embedding should point
// to, with a weight.
struct TextExample {
  std::string text;
  std::int32_t node = 0;
  double weight = 1.0;
};

// Fits token rows R (vocab x dim) so that for every example the sum of its tokens' rows is close
// to concepts[node] (ridge least squares, conjugate gradients on the normal equations, a fixed
// number of iterations so that the result is deterministic). Start and end tokens keep zero rows,
// as do tokens that no example uses. Returns vocab * dim floats, row-major.
// Throws DataError when the CLIP vocabulary is missing.
std::vector<float> fit_token_rows(const std::vector<TextExample>& examples,
                                  const std::vector<std::vector<double>>& concepts, int dim,
                                  int vocab_size);

}  // namespace mll::synth::detail
