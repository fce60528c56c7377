// The selection formulas (method.md section 4) and matching/task parsing on hand-computed examples.
#include <gtest/gtest.h>

#include <cmath>

#include "mll/core/error.hpp"
#include "mll/select/match.hpp"
#include "mll/select/selection.hpp"
#include "mll/select/task.hpp"

namespace mll::select {
namespace {

TEST(RestrictedPredictions, ArgmaxWithFirstMaximumOnTies) {
  // 3 images x 3 task nodes.
  const std::vector<float> logits = {1, 5, 2,  //
                                     3, 3, 1,  // tie: the first node wins
                                     0, 0, 9};
  EXPECT_EQ(restricted_predictions(logits.data(), 3, 3), (std::vector<std::int32_t>{1, 0, 2}));
}

// Two task nodes A (rows 0, 1, 2) and B (rows 2, 3): row 2 is shared.
// Predictions: row0 -> A, row1 -> B, row2 -> A, row3 -> B.
// A: TP = rows 0, 2 = 2; FN = 1 (row 1); FP = row 2 as a member of B predicted A = 1.
// B: TP = row 3 = 1; FN = row 2 = 1; FP = row 1 (member of A predicted B) = 1.
TEST(NodeCounts, SharedImagesCountOncePerNode) {
  const std::vector<std::vector<std::int64_t>> members = {{0, 1, 2}, {2, 3}};
  const auto counts = node_counts(members, {0, 1, 0, 1});
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts[0], (NodeCounts{2, 1, 1}));
  EXPECT_EQ(counts[1], (NodeCounts{1, 1, 1}));
}

TEST(NodeScore, PrecisionRecallF1AndEmptyDenominators) {
  const NodeCounts c{2, 1, 3};
  EXPECT_DOUBLE_EQ(node_score(c, Metric::kPrecision), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(node_score(c, Metric::kRecall), 2.0 / 5.0);
  // Harmonic mean of 2/3 and 2/5 = 2*(4/15)/(16/15) = 0.5 = 2TP/(2TP+FP+FN) = 4/8.
  EXPECT_DOUBLE_EQ(node_score(c, Metric::kF1), 0.5);
  const NodeCounts none{0, 0, 0};
  EXPECT_EQ(node_score(none, Metric::kPrecision), 0.0);
  EXPECT_EQ(node_score(none, Metric::kRecall), 0.0);
  EXPECT_EQ(node_score(none, Metric::kF1), 0.0);
}

TEST(ClassScores, WeightedSumOverMatchedNodes) {
  const std::vector<double> p = {0.5, 1.0, 0.25};
  const std::vector<ClassNodes> classes = {{{0, 1}, {0.75, 0.25}}, {{2}, {1.0}}, {{}, {}}};
  const auto s = class_scores(p, classes);
  EXPECT_DOUBLE_EQ(s[0], 0.75 * 0.5 + 0.25 * 1.0);
  EXPECT_DOUBLE_EQ(s[1], 0.25);
  EXPECT_DOUBLE_EQ(s[2], 0.0);
}

TEST(MixedScores, AllAndOthers) {
  const std::vector<double> p = {0.9, 0.3, 0.6};
  // mean over all = 0.6
  const auto all = mixed_scores(p, 0.7, Mix::kAll);
  EXPECT_NEAR(all[0], 0.7 * 0.9 + 0.3 * 0.6, 1e-15);
  EXPECT_NEAR(all[1], 0.7 * 0.3 + 0.3 * 0.6, 1e-15);
  // mean over the others: (0.3+0.6)/2 = 0.45 for class 0, (0.9+0.6)/2 = 0.75 for class 1
  const auto others = mixed_scores(p, 0.7, Mix::kOthers);
  EXPECT_NEAR(others[0], 0.7 * 0.9 + 0.3 * 0.45, 1e-15);
  EXPECT_NEAR(others[1], 0.7 * 0.3 + 0.3 * 0.75, 1e-15);
  EXPECT_NEAR(others[2], 0.7 * 0.6 + 0.3 * 0.6, 1e-15);
  // One class: no others, the mean is the class itself.
  EXPECT_DOUBLE_EQ(mixed_scores({0.4}, 0.7, Mix::kOthers)[0], 0.4);
  EXPECT_DOUBLE_EQ(mixed_scores({0.4}, 0.0, Mix::kAll)[0], 0.4);
}

TEST(TopK, LargestFirstTiesByModelOrderAndClamped) {
  const std::vector<double> r = {0.5, 0.8, 0.5, 0.8, 0.1};
  EXPECT_EQ(top_k(r, 1), (std::vector<std::size_t>{1}));
  EXPECT_EQ(top_k(r, 3), (std::vector<std::size_t>{1, 3, 0}));
  EXPECT_EQ(top_k(r, 9), (std::vector<std::size_t>{1, 3, 0, 2, 4}));
}

TEST(Parse, MetricsAndMixes) {
  EXPECT_EQ(parse_metric("f1"), Metric::kF1);
  EXPECT_EQ(parse_mix("others"), Mix::kOthers);
  EXPECT_THROW(parse_metric("accuracy"), UsageError);
  EXPECT_THROW(parse_mix("some"), UsageError);
}

TEST(Matching, LexicalMatchDominatesAndWeightsSumToOne) {
  MatchOptions options;
  options.n_match = 3;
  // Four nodes; node 2 is a lemma match with a low cosine; node 3 has no images.
  const std::vector<double> cosine = {0.6, 0.7, 0.2, 0.95};
  const auto m = rank_nodes("x", cosine, {0, 0, 1, 0}, {1, 1, 1, 0}, options);
  ASSERT_EQ(m.nodes.size(), 3u);
  EXPECT_EQ(m.nodes[0].node, 2);  // 0.2 + 1.0 bonus
  EXPECT_EQ(m.nodes[1].node, 1);
  EXPECT_EQ(m.nodes[2].node, 0);
  double sum = 0;
  for (const auto& n : m.nodes) sum += n.weight;
  EXPECT_NEAR(sum, 1.0, 1e-12);
  // z = softmax(score / 0.05): exp(0) : exp((0.7-1.2)/0.05) : exp((0.6-1.2)/0.05)
  const double a = 1.0, b = std::exp(-10.0), c = std::exp(-12.0);
  EXPECT_NEAR(m.nodes[0].weight, a / (a + b + c), 1e-12);
  EXPECT_NEAR(m.nodes[1].weight, b / (a + b + c), 1e-12);
  EXPECT_TRUE(m.warnings.empty());
}

TEST(Matching, WeakClassWarnsAndNoCandidateWarns) {
  MatchOptions options;
  const auto weak = rank_nodes("blob", {0.1, 0.3}, {0, 0}, {1, 1}, options);
  ASSERT_EQ(weak.warnings.size(), 1u);
  EXPECT_NE(weak.warnings[0].find("matches nothing well"), std::string::npos);
  EXPECT_EQ(weak.nodes.size(), 2u);  // reported, not dropped
  const auto none = rank_nodes("blob", {0.9}, {0}, {0}, options);
  EXPECT_TRUE(none.nodes.empty());
  EXPECT_EQ(none.warnings.size(), 1u);
}

TEST(Matching, TemplatesAndSoftmax) {
  EXPECT_EQ(fill_template("a photo of a {class}, {domain}.", "pug", "pets"),
            "a photo of a pug, pets.");
  Task task;
  task.classes = {"pug", "tench"};
  task.domain = "pets";
  task.captions["tench"] = {"a fish", "a green fish"};
  MatchOptions options;
  EXPECT_EQ(class_texts(task, 0, options), (std::vector<std::string>{"a photo of a pug, pets."}));
  EXPECT_EQ(class_texts(task, 1, options).size(), 2u);
  const auto z = softmax_weights({1.0, 1.0}, 0.5);
  EXPECT_DOUBLE_EQ(z[0], 0.5);
  EXPECT_THROW(softmax_weights({1.0}, 0.0), UsageError);
}

TEST(TaskSpec, ParsesAndRejectsBadTasks) {
  const auto t = parse_task(R"({"name": "pets", "classes": ["pug", "tench"],
      "captions": {"pug": ["a small dog"]}, "images": {"dir": "imgs"}})",
                            "t.json", "/data");
  EXPECT_EQ(t.classes.size(), 2u);
  EXPECT_EQ(t.images_dir, "/data/imgs");
  EXPECT_TRUE(t.labeled);
  EXPECT_EQ(t.captions.at("pug").size(), 1u);
  EXPECT_EQ(t.class_index("tench"), 1);
  const auto fails = [](const std::string& text, const std::string& needle) {
    try {
      parse_task(text, "t.json", "/data");
      ADD_FAILURE() << "accepted " << text;
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("t.json"), std::string::npos) << e.what();
    }
  };
  fails(R"({"name": "x", "classes": []})", "class list is empty");
  fails(R"({"name": "x", "classes": ["a", "a"]})", "duplicate class name 'a'");
  fails(R"({"name": "x y", "classes": ["a"]})", "name 'x y'");
  fails(R"({"classes": ["a"]})", "'name' is missing");
  fails(R"({"name": "x", "classes": ["a"], "captions": {"b": ["c"]}})", "'b'");
  fails(R"({"name": "x", "classes": ["a"], "images": {}})", "exactly one");
  fails("{", "not valid JSON");
}

}  // namespace
}  // namespace mll::select
