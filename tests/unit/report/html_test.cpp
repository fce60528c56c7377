// The HTML pieces of the reports: heatmaps with axis titles and legend, escaping, and the
// top-level subtrees of the zoo overview on a hand-made graph.
#include <gtest/gtest.h>

#include <cmath>

#include "mll/core/error.hpp"
#include "mll/report/html.hpp"
#include "mll/report/zoo.hpp"

namespace mll::report {
namespace {

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

TEST(Html, EscapesMarkup) {
  EXPECT_EQ(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
  EXPECT_EQ(pct(std::nan("")), "-");
  EXPECT_EQ(pct(0.8333), "83.3");
}

TEST(Heatmap, HasEveryCellAxisTitlesAndALegend) {
  Heatmap map;
  map.id = "m";
  map.rows = {"model <a>", "b"};
  map.cols = {"x", "y", "z"};
  map.values = {0.0, 0.5, 1.0, std::nan(""), 0.25, 0.75};
  map.row_axis = "model";
  map.col_axis = "subtree";
  map.legend = "subtree top-1";
  const auto svg = heatmap_svg(map);
  EXPECT_EQ(count(svg, "<rect class=\"cell\""), 6u);
  EXPECT_EQ(count(svg, "class=\"row-label\""), 2u);
  EXPECT_EQ(count(svg, "class=\"col-label\""), 3u);
  EXPECT_NE(svg.find("class=\"axis col-axis\""), std::string::npos);
  EXPECT_NE(svg.find(">subtree</text>"), std::string::npos);
  EXPECT_NE(svg.find(">model</text>"), std::string::npos);
  EXPECT_NE(svg.find("<g class=\"legend\">"), std::string::npos);
  EXPECT_NE(svg.find(">subtree top-1</text>"), std::string::npos);
  EXPECT_NE(svg.find("100.0%"), std::string::npos);  // the legend's top tick
  EXPECT_NE(svg.find("model &lt;a&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("model <a>"), std::string::npos);
  EXPECT_NE(svg.find("no value"), std::string::npos);                      // the NaN cell's tooltip
  EXPECT_EQ(svg.find("http://"), svg.find("http://www.w3.org/2000/svg"));  // no other URL
}

TEST(Heatmap, RefusesValuesThatDoNotFit) {
  Heatmap map;
  map.rows = {"a"};
  map.cols = {"x", "y"};
  map.values = {0.5};
  EXPECT_THROW(heatmap_svg(map), InternalError);
}

graph::Node node(const std::string& wnid, const std::string& name) {
  graph::Node n;
  n.wnid = wnid;
  n.name = name;
  return n;
}

// entity -> physical -> {animal -> {dog, cat, fish}, vehicle -> {car, bike}}; every node has
// probe images.
struct Fixture {
  graph::Graph graph;
  probe::ProbeSet probe;
  Fixture() {
    std::vector<graph::Node> nodes = {
        node("n0", "entity.n.01"),  node("n1", "physical.n.01"), node("n2", "animal.n.01"),
        node("n3", "vehicle.n.01"), node("n4", "dog.n.01"),      node("n5", "cat.n.01"),
        node("n6", "fish.n.01"),    node("n7", "car.n.01"),      node("n8", "bike.n.01")};
    std::vector<graph::Edge> edges = {{1, 0}, {2, 1}, {3, 1}, {4, 2},
                                      {5, 2}, {6, 2}, {7, 3}, {8, 3}};
    graph = graph::Graph(nodes, edges, {}, "test");
    probe.per_node = 2;
    probe.node_offsets = {0};
    for (std::size_t v = 0; v < nodes.size(); ++v) {
      probe.node_images.push_back(static_cast<std::int32_t>(v));
      probe.node_offsets.push_back(static_cast<std::int64_t>(probe.node_images.size()));
    }
  }
};

TEST(TopLevelSubtrees, WalkDownChainsAndStopAtTheColumnLimit) {
  const Fixture f;
  // One column: the chain entity -> physical is walked as long as one column suffices.
  EXPECT_EQ(top_level_subtrees(f.graph, f.probe, 1), (std::vector<std::int32_t>{1}));
  EXPECT_EQ(top_level_subtrees(f.graph, f.probe, 2), (std::vector<std::int32_t>{2, 3}));
  // Three columns: animal (the larger subtree) would need four, so vehicle splits instead.
  EXPECT_EQ(top_level_subtrees(f.graph, f.probe, 3), (std::vector<std::int32_t>{2, 7, 8}));
  EXPECT_EQ(top_level_subtrees(f.graph, f.probe, 4), (std::vector<std::int32_t>{3, 4, 5, 6}));
  EXPECT_EQ(top_level_subtrees(f.graph, f.probe, 5), (std::vector<std::int32_t>{4, 5, 6, 7, 8}));
  EXPECT_EQ(top_level_subtrees(f.graph, f.probe, 9), (std::vector<std::int32_t>{4, 5, 6, 7, 8}));
}

TEST(TopLevelSubtrees, LeaveOutSubtreesWithoutImages) {
  Fixture f;
  // vehicle, car and bike lose their images.
  f.probe.node_images.clear();
  f.probe.node_offsets = {0};
  for (std::int32_t v = 0; v < 9; ++v) {
    if (v != 3 && v != 7 && v != 8) f.probe.node_images.push_back(v);
    f.probe.node_offsets.push_back(static_cast<std::int64_t>(f.probe.node_images.size()));
  }
  EXPECT_EQ(top_level_subtrees(f.graph, f.probe, 3), (std::vector<std::int32_t>{4, 5, 6}));
}

TEST(RankedSubtrees, InnerNodesBestFirst) {
  const Fixture f;
  store::ModelLabels labels;
  labels.subtree_top1 = {0.5f, 0.5f, 0.9f, 0.1f, 1.0f, 1.0f, 1.0f, 0.0f, 0.0f};
  const auto ranked = ranked_subtrees(f.graph, f.probe, labels, 1);
  ASSERT_EQ(ranked.size(), 4u);  // entity, physical, animal, vehicle
  EXPECT_EQ(ranked.front().name, "animal.n.01");
  EXPECT_EQ(ranked.front().nodes_below, 3u);
  EXPECT_EQ(ranked.back().name, "vehicle.n.01");
  labels.subtree_top1.pop_back();
  EXPECT_THROW(ranked_subtrees(f.graph, f.probe, labels, 1), InternalError);
}

}  // namespace
}  // namespace mll::report
