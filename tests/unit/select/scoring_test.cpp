// Scoring against a store: predictions do not depend on how the task's rows are blocked or on
// the number of threads, equal a plain reference computed here, and ties go to the smaller node.
#include <gtest/gtest.h>

#include <cmath>

#include "mll/select/selection.hpp"
#include "select_store_fixture.hpp"
#include "test_paths.hpp"

namespace mll::select {
namespace {

// Six classes of four nodes each (nodes 1..24); node 1 and node 2 have equal caption rows.
TaskNodes six_classes(const store::Store& s) {
  std::vector<std::vector<std::int32_t>> nodes;
  std::vector<std::vector<double>> weights;
  for (int y = 0; y < 6; ++y) {
    nodes.push_back({1 + 4 * y, 2 + 4 * y, 3 + 4 * y, 4 + 4 * y});
    weights.push_back({0.4, 0.3, 0.2, 0.1});
  }
  return task_nodes(s, nodes, weights);
}

// pred by the definition: argmax over the task nodes of s * E[x] . T[caption(v)], in double,
// first maximum on ties.
std::vector<NodeCounts> reference_counts(const store::Store& s, const std::string& id,
                                         const TaskNodes& nodes) {
  const Matrix text = s.read_text_embeddings(id);
  const Matrix images =
      s.read_image_embeddings(id, 0, static_cast<std::int64_t>(s.probe().image_count()));
  const double scale = s.model_info(id).logit_scale;
  std::vector<std::int32_t> pred;
  for (const auto image : nodes.images) {
    double best = -INFINITY;
    std::int32_t arg = -1;
    for (std::size_t j = 0; j < nodes.nodes.size(); ++j) {
      const auto c = s.node_caption()[static_cast<std::size_t>(nodes.nodes[j])];
      double dot = 0;
      for (std::int64_t t = 0; t < text.cols; ++t) dot += images.row(image)[t] * text.row(c)[t];
      if (scale * dot > best) {
        best = scale * dot;
        arg = static_cast<std::int32_t>(j);
      }
    }
    pred.push_back(arg);
  }
  return node_counts(nodes.members, pred);
}

TEST(Scoring, PredictionsIgnoreBlockingAndThreadsAndEqualTheDefinition) {
  test::ScratchDir dir;
  test::SyntheticStoreShape shape;
  shape.tied_with_node1 = {2};
  auto s = test::make_synthetic_store(dir / "store.h5", shape);
  const auto nodes = six_classes(s);
  ASSERT_GT(nodes.images.size(), 50u);
  std::vector<SelectionResult> results;
  for (const auto& [block, threads] :
       std::vector<std::pair<std::int64_t, int>>{{4096, 1}, {1, 3}, {7, 2}, {64, 0}}) {
    SelectOptions options;
    options.block_rows = block;
    options.threads = threads;
    results.push_back(select_models(s, shape.models, nodes, options));
  }
  for (std::size_t m = 0; m < shape.models.size(); ++m) {
    const auto expected = reference_counts(s, shape.models[m], nodes);
    for (const auto& r : results) {
      EXPECT_EQ(r.scores[m].counts, expected) << shape.models[m];
      EXPECT_EQ(r.scores[m].mixed, results[0].scores[m].mixed);
    }
    // Node 2's caption row equals node 1's: every image that prefers either goes to node 1.
    EXPECT_EQ(results[0].scores[m].counts[1].tp + results[0].scores[m].counts[1].fp, 0)
        << shape.models[m];
  }
  // score_model alone gives what select_models gives.
  SelectOptions options;
  EXPECT_EQ(score_model(s, "m-b", nodes, options).counts, results[0].scores[1].counts);
}

TEST(Scoring, ArgmaxTakesTheFirstMaximumAtAnyWidth) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> value(0, 6);  // few values: many ties
  for (const std::int64_t k : {1, 2, 15, 16, 17, 33, 490}) {
    std::vector<float> logits(static_cast<std::size_t>(9 * k));
    for (auto& x : logits) x = static_cast<float>(value(rng)) - 3.0f;
    const auto pred = restricted_predictions(logits.data(), 9, k);
    for (std::int64_t i = 0; i < 9; ++i) {
      const float* row = logits.data() + i * k;
      EXPECT_EQ(pred[static_cast<std::size_t>(i)], std::max_element(row, row + k) - row) << k;
    }
  }
}

}  // namespace
}  // namespace mll::select
