// The reuse formulas (method.md section 5) on hand-computed examples.
#include <gtest/gtest.h>

#include <cmath>

#include "mll/reuse/ensemble.hpp"

namespace mll::reuse {
namespace {

TEST(Entropy, BitsWithZeroLogZero) {
  const std::vector<double> uniform = {0.25, 0.25, 0.25, 0.25};
  EXPECT_DOUBLE_EQ(entropy_bits(uniform.data(), 4), 2.0);
  const std::vector<double> half = {0.5, 0.5, 0.0};  // 0 log 0 = 0
  EXPECT_DOUBLE_EQ(entropy_bits(half.data(), 3), 1.0);
  const std::vector<double> one_hot = {0.0, 1.0, 0.0};
  EXPECT_EQ(entropy_bits(one_hot.data(), 3), 0.0);
  EXPECT_FALSE(std::signbit(entropy_bits(one_hot.data(), 3)));
}

TEST(Entropy, WeightsAreFiniteForZeroEntropy) {
  const std::vector<double> one_hot = {1.0, 0.0};
  EXPECT_DOUBLE_EQ(entropy_weight(one_hot.data(), 2), 1.0 / kEntropyEps);
  EXPECT_TRUE(std::isfinite(entropy_weight(one_hot.data(), 2)));
  const std::vector<double> half = {0.5, 0.5};
  EXPECT_DOUBLE_EQ(entropy_weight(half.data(), 2, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(entropy_weight(half.data(), 2), 1.0 / (1.0 + kEntropyEps));
}

TEST(Softmax, ScaledCosines) {
  const std::vector<float> cos = {0.0f, 0.0f, 0.1f, 0.0f};  // 2 images x 2 classes
  const auto p = probabilities_from_cosines(cos, 2, 2, 10.0);
  EXPECT_DOUBLE_EQ(p.row(0)[0], 0.5);
  EXPECT_NEAR(p.row(1)[0], std::exp(1.0) / (std::exp(1.0) + 1.0), 1e-7);  // 0.1f is inexact
  EXPECT_NEAR(p.row(1)[0] + p.row(1)[1], 1.0, 1e-15);
}

// Two models, two classes, one image. Model 0: P = (0.5, 0.5), H = 1, w = 1/(1+eps).
// Model 1: P = (0.2, 0.8), H = -(0.2 log2 0.2 + 0.8 log2 0.8) = 0.721928...
TEST(Ensemble, PerClassEntropyWeightedSum) {
  MatrixD a{1, 2, {0.5, 0.5}}, b{1, 2, {0.2, 0.8}};
  const double h = -(0.2 * std::log2(0.2) + 0.8 * std::log2(0.8));
  const double wa = 1.0 / (1.0 + 1e-6), wb = 1.0 / (h + 1e-6);
  // Class 0 uses model 0 only, class 1 both.
  const auto s = ensemble_scores({&a, &b}, {{0}, {0, 1}});
  EXPECT_NEAR(s[0], wa * 0.5, 1e-12);
  EXPECT_NEAR(s[1], wa * 0.5 + wb * 0.8, 1e-12);
  // Class 0 uses model 1 only: 0.2 wb = 0.277 < class 1 with model 0: 0.5 wa.
  const auto t = ensemble_scores({&a, &b}, {{1}, {0}});
  EXPECT_NEAR(t[0], wb * 0.2, 1e-12);
  EXPECT_NEAR(t[1], wa * 0.5, 1e-12);
  EXPECT_EQ(argmax_rows(t, 1, 2)[0], 1);
}

TEST(Metrics, TopOneTopFiveRecallAndConfusion) {
  // 3 images, 6 classes. Image 0 (class 0): best class 0. Image 1 (class 1): class 1 ranks 6th.
  // Image 2 (class 0): class 0 ties with class 5 for first: the smaller index wins.
  std::vector<double> s = {9, 1, 1, 1, 1, 1,  //
                           6, 0, 5, 4, 3, 2,  //
                           7, 1, 1, 1, 1, 7};
  const auto m = evaluate(s, 3, 6, {0, 1, 0});
  EXPECT_DOUBLE_EQ(m.top1, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.top5, 2.0 / 3.0);
  EXPECT_EQ(m.predicted, (std::vector<std::int32_t>{0, 0, 0}));
  EXPECT_DOUBLE_EQ(m.class_recall[0], 1.0);
  EXPECT_DOUBLE_EQ(m.class_recall[1], 0.0);
  EXPECT_TRUE(std::isnan(m.class_recall[2]));
  EXPECT_DOUBLE_EQ(m.mean_class_recall, 0.5);  // over classes with images only
  EXPECT_EQ(m.confusion[0 * 6 + 0], 2);
  EXPECT_EQ(m.confusion[1 * 6 + 0], 1);
  // Fewer than 5 classes: no top-5.
  EXPECT_TRUE(std::isnan(evaluate({1, 0}, 1, 2, {0}).top5));
}

}  // namespace
}  // namespace mll::reuse
