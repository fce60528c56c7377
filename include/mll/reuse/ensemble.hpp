// Reuse (method.md section 5): per-model class probabilities, entropy weights, the per-class
// ensemble and the evaluation metrics. Pure functions over plain buffers, so tests can check each
// formula on hand-computed numbers. Nothing here is collective or throws unless noted.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "mll/core/matrix.hpp"

namespace mll::reuse {

// eps in w = 1 / (H_2 + eps): a model whose distribution is one-hot (H = 0) gets weight 1e6,
// finite, so that a second one-hot model still counts (their weights are equal) and no NaN can
// arise.
inline constexpr double kEntropyEps = 1e-6;

// softmax(scale * cosines) over `n` values, computed stably in double.
std::vector<double> softmax(const double* logits, std::size_t n);

// Shannon entropy in bits, with 0 log 0 = 0.
double entropy_bits(const double* p, std::size_t n);

// w = 1 / (entropy_bits(p) + eps).
double entropy_weight(const double* p, std::size_t n, double eps = kEntropyEps);

// A model's P(y|x) for every target image is a MatrixD: rows = images, cols = classes.

// P = softmax over classes of scale * cos (cosines rows x classes). Does not throw.
MatrixD probabilities_from_cosines(const std::vector<float>& cosines, std::int64_t images,
                                   std::int64_t classes, double scale);

// score_y(x) = sum over m in chosen[y] of w_m(x) P_m(y|x). `chosen[y]` indexes `models`.
// Returns images x classes scores. Throws InternalError on inconsistent shapes.
std::vector<double> ensemble_scores(const std::vector<const MatrixD*>& models,
                                    const std::vector<std::vector<std::size_t>>& chosen,
                                    double eps = kEntropyEps);

struct Metrics {
  std::int64_t images = 0;
  std::int64_t classes = 0;
  double top1 = 0.0;
  double top5 = std::numeric_limits<double>::quiet_NaN();  // NaN when classes < 5
  double mean_class_recall = 0.0;       // mean over classes that have at least one image
  std::vector<double> class_recall;     // NaN for classes without images
  std::vector<std::int64_t> confusion;  // classes x classes, row = true class, col = predicted
  std::vector<std::int32_t> predicted;  // per image
};

// yhat = argmax (first maximum: ties go to the smaller class index); top-5 counts an image when
// its class is among the 5 best scores (ties to smaller indices). Throws InternalError when the
// labels do not fit.
Metrics evaluate(const std::vector<double>& scores, std::int64_t images, std::int64_t classes,
                 const std::vector<std::int32_t>& labels);

// The predictions alone (unlabeled tasks).
std::vector<std::int32_t> argmax_rows(const std::vector<double>& scores, std::int64_t images,
                                      std::int64_t classes);

}  // namespace mll::reuse
