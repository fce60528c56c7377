// The text tower's token table, fitted so that captions, lemmas, plurals and prompts of a node
// all sum to the node's concept vector.
#include <algorithm>
#include <map>

#include "internal.hpp"
#include "mll/core/error.hpp"
#include "mll/tokenize/tokenizer.hpp"

namespace mll::synth::detail {

MatrixD random_orthonormal(int rows, int cols, Rng& rng) {
  MLL_CHECK(rows >= cols && cols > 0);
  MatrixD q = MatrixD::zeros(rows, cols);
  for (int c = 0; c < cols; ++c) {
    for (;;) {
      for (int r = 0; r < rows; ++r) q.at(r, c) = rng.normal();
      // Two passes of modified Gram-Schmidt keep the columns orthogonal to rounding error.
      for (int pass = 0; pass < 2; ++pass) {
        for (int k = 0; k < c; ++k) {
          double dot = 0;
          for (int r = 0; r < rows; ++r) dot += q.at(r, k) * q.at(r, c);
          for (int r = 0; r < rows; ++r) q.at(r, c) -= dot * q.at(r, k);
        }
      }
      double norm = 0;
      for (int r = 0; r < rows; ++r) norm += q.at(r, c) * q.at(r, c);
      norm = std::sqrt(norm);
      if (norm < 1e-6) continue;  // a degenerate draw; practically never
      for (int r = 0; r < rows; ++r) q.at(r, c) /= norm;
      break;
    }
  }
  return q;
}

std::vector<float> fit_token_rows(const std::vector<TextExample>& examples,
                                  const std::vector<std::vector<double>>& concepts, int dim,
                                  int vocab_size) {
  const auto tokenizer = tokenize::make_tokenizer(clip_bpe_spec());
  const std::int64_t start = tokenizer->start_id();
  const std::int64_t end = tokenizer->end_id();

  // Sparse design matrix A (examples x used tokens), one row of (column, count) per example.
  std::map<std::int64_t, int> column_of;
  std::vector<std::vector<std::pair<int, double>>> rows(examples.size());
  std::vector<std::int64_t> token_of;
  for (std::size_t i = 0; i < examples.size(); ++i) {
    auto ids = tokenizer->encode_padded(examples[i].text);  // what the model sees (77 tokens)
    std::map<int, double> counts;
    for (const auto id : ids) {
      if (id == start || id == end || id == tokenizer->pad_id()) continue;
      auto [it, added] = column_of.emplace(id, static_cast<int>(token_of.size()));
      if (added) token_of.push_back(id);
      counts[it->second] += 1.0;
    }
    rows[i].assign(counts.begin(), counts.end());
  }
  const int n = static_cast<int>(token_of.size());
  const std::size_t nd = static_cast<std::size_t>(n) * dim;

  // Normal equations (A^T W A + lambda I) R = A^T W Y, solved for all `dim` columns at once.
  constexpr double kLambda = 0.02;
  auto apply = [&](const std::vector<double>& x, std::vector<double>& out) {
    std::fill(out.begin(), out.end(), 0.0);
    std::vector<double> ax(dim);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      std::fill(ax.begin(), ax.end(), 0.0);
      for (const auto& [col, count] : rows[i]) {
        const double* xr = &x[static_cast<std::size_t>(col) * dim];
        for (int k = 0; k < dim; ++k) ax[k] += count * xr[k];
      }
      const double w = examples[i].weight;
      for (const auto& [col, count] : rows[i]) {
        double* o = &out[static_cast<std::size_t>(col) * dim];
        for (int k = 0; k < dim; ++k) o[k] += w * count * ax[k];
      }
    }
    for (std::size_t j = 0; j < nd; ++j) out[j] += kLambda * x[j];
  };
  std::vector<double> b(nd, 0.0);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& y = concepts.at(static_cast<std::size_t>(examples[i].node));
    for (const auto& [col, count] : rows[i]) {
      double* o = &b[static_cast<std::size_t>(col) * dim];
      for (int k = 0; k < dim; ++k) o[k] += examples[i].weight * count * y[k];
    }
  }
  // Conjugate gradients, one scalar step per column k (the columns are independent systems that
  // share the matrix).
  std::vector<double> x(nd, 0.0), r = b, p = b, ap(nd);
  std::vector<double> rr(dim, 0.0);
  for (std::size_t j = 0; j < nd; ++j) rr[j % dim] += r[j] * r[j];
  constexpr int kIterations = 300;
  for (int it = 0; it < kIterations; ++it) {
    apply(p, ap);
    std::vector<double> pap(dim, 0.0);
    for (std::size_t j = 0; j < nd; ++j) pap[j % dim] += p[j] * ap[j];
    std::vector<double> alpha(dim, 0.0);
    for (int k = 0; k < dim; ++k) alpha[k] = pap[k] > 0 ? rr[k] / pap[k] : 0.0;
    std::vector<double> rr_new(dim, 0.0);
    for (std::size_t j = 0; j < nd; ++j) {
      const int k = static_cast<int>(j % dim);
      x[j] += alpha[k] * p[j];
      r[j] -= alpha[k] * ap[j];
      rr_new[k] += r[j] * r[j];
    }
    for (std::size_t j = 0; j < nd; ++j) {
      const int k = static_cast<int>(j % dim);
      const double beta = rr[k] > 0 ? rr_new[k] / rr[k] : 0.0;
      p[j] = r[j] + beta * p[j];
    }
    rr = rr_new;
  }

  std::vector<float> table(static_cast<std::size_t>(vocab_size) * dim, 0.0f);
  for (int c = 0; c < n; ++c) {
    const std::int64_t id = token_of[static_cast<std::size_t>(c)];
    MLL_CHECK(id >= 0 && id < vocab_size);
    for (int k = 0; k < dim; ++k) {
      table[static_cast<std::size_t>(id) * dim + k] =
          static_cast<float>(x[static_cast<std::size_t>(c) * dim + k]);
    }
  }
  return table;
}

}  // namespace mll::synth::detail
