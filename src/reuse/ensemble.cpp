#include "mll/reuse/ensemble.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "mll/core/error.hpp"

namespace mll::reuse {

std::vector<double> softmax(const double* logits, std::size_t n) {
  std::vector<double> out(n);
  if (n == 0) return out;
  const double top = *std::max_element(logits, logits + n);
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = std::exp(logits[i] - top);
    sum += out[i];
  }
  for (auto& v : out) v /= sum;
  return out;
}

double entropy_bits(const double* p, std::size_t n) {
  double h = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] > 0.0) h -= p[i] * std::log2(p[i]);
  }
  return std::max(0.0, h);  // rounding can leave -0.0 or a tiny negative for a one-hot row
}

double entropy_weight(const double* p, std::size_t n, double eps) {
  return 1.0 / (entropy_bits(p, n) + eps);
}

MatrixD probabilities_from_cosines(const std::vector<float>& cosines, std::int64_t images,
                                   std::int64_t classes, double scale) {
  MatrixD out;
  out.rows = images;
  out.cols = classes;
  out.values.resize(static_cast<std::size_t>(images * classes));
  std::vector<double> logits(static_cast<std::size_t>(classes));
  for (std::int64_t i = 0; i < images; ++i) {
    for (std::int64_t c = 0; c < classes; ++c) {
      logits[static_cast<std::size_t>(c)] =
          scale * static_cast<double>(cosines[static_cast<std::size_t>(i * classes + c)]);
    }
    const auto p = softmax(logits.data(), logits.size());
    std::copy(p.begin(), p.end(), out.values.begin() + i * classes);
  }
  return out;
}

std::vector<double> ensemble_scores(const std::vector<const MatrixD*>& models,
                                    const std::vector<std::vector<std::size_t>>& chosen,
                                    double eps) {
  MLL_CHECK(!models.empty());
  const auto images = models.front()->rows;
  const auto classes = models.front()->cols;
  MLL_CHECK(static_cast<std::int64_t>(chosen.size()) == classes, "one model list per class");
  for (const auto* m : models) MLL_CHECK(m->rows == images && m->cols == classes);
  // w_m(x) once per model and image.
  std::vector<std::vector<double>> weights(models.size());
  std::vector<char> used(models.size(), 0);
  for (const auto& list : chosen) {
    for (const auto m : list) {
      MLL_CHECK(m < models.size(), "model index ", m);
      used[m] = 1;
    }
  }
  for (std::size_t m = 0; m < models.size(); ++m) {
    if (!used[m]) continue;
    weights[m].resize(static_cast<std::size_t>(images));
    for (std::int64_t i = 0; i < images; ++i) {
      weights[m][static_cast<std::size_t>(i)] =
          entropy_weight(models[m]->row(i), static_cast<std::size_t>(classes), eps);
    }
  }
  std::vector<double> scores(static_cast<std::size_t>(images * classes), 0.0);
  for (std::int64_t i = 0; i < images; ++i) {
    for (std::int64_t y = 0; y < classes; ++y) {
      double s = 0.0;
      for (const auto m : chosen[static_cast<std::size_t>(y)]) {
        s += weights[m][static_cast<std::size_t>(i)] * models[m]->row(i)[y];
      }
      scores[static_cast<std::size_t>(i * classes + y)] = s;
    }
  }
  return scores;
}

std::vector<std::int32_t> argmax_rows(const std::vector<double>& scores, std::int64_t images,
                                      std::int64_t classes) {
  std::vector<std::int32_t> out(static_cast<std::size_t>(images));
  for (std::int64_t i = 0; i < images; ++i) {
    const double* row = scores.data() + i * classes;
    out[static_cast<std::size_t>(i)] =
        static_cast<std::int32_t>(std::max_element(row, row + classes) - row);
  }
  return out;
}

Metrics evaluate(const std::vector<double>& scores, std::int64_t images, std::int64_t classes,
                 const std::vector<std::int32_t>& labels) {
  MLL_CHECK(static_cast<std::int64_t>(labels.size()) == images);
  MLL_CHECK(static_cast<std::int64_t>(scores.size()) == images * classes);
  Metrics m;
  m.images = images;
  m.classes = classes;
  m.predicted = argmax_rows(scores, images, classes);
  m.confusion.assign(static_cast<std::size_t>(classes * classes), 0);
  std::int64_t hits = 0, hits5 = 0;
  std::vector<std::int64_t> per_class(static_cast<std::size_t>(classes), 0);
  for (std::int64_t i = 0; i < images; ++i) {
    const auto y = labels[static_cast<std::size_t>(i)];
    MLL_CHECK(y >= 0 && y < classes, "label ", y, " out of range");
    const auto p = m.predicted[static_cast<std::size_t>(i)];
    ++m.confusion[static_cast<std::size_t>(y * classes + p)];
    ++per_class[static_cast<std::size_t>(y)];
    hits += p == y;
    // Rank of the true class: classes scoring higher, or equal with a smaller index.
    const double* row = scores.data() + i * classes;
    std::int64_t rank = 0;
    for (std::int64_t c = 0; c < classes; ++c) {
      if (row[c] > row[y] || (row[c] == row[y] && c < y)) ++rank;
    }
    hits5 += rank < 5;
  }
  const double n = images > 0 ? static_cast<double>(images) : 1.0;
  m.top1 = static_cast<double>(hits) / n;
  if (classes >= 5) m.top5 = static_cast<double>(hits5) / n;
  double sum = 0.0;
  std::int64_t counted = 0;
  for (std::int64_t y = 0; y < classes; ++y) {
    const auto total = per_class[static_cast<std::size_t>(y)];
    if (total == 0) {
      m.class_recall.push_back(std::numeric_limits<double>::quiet_NaN());
      continue;
    }
    const double r = static_cast<double>(m.confusion[static_cast<std::size_t>(y * classes + y)]) /
                     static_cast<double>(total);
    m.class_recall.push_back(r);
    sum += r;
    ++counted;
  }
  m.mean_class_recall = counted > 0 ? sum / static_cast<double>(counted) : 0.0;
  return m;
}

}  // namespace mll::reuse
