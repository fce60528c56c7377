// A small synthetic label store for selection tests, built in-process at test time: a star graph
// (a root and its children, lemmas "conceptN"), a probe set whose images each serve a few nodes,
// and models of seeded random unit vectors. No WordNet, no model files.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "mll/graph/graph.hpp"
#include "mll/probe/probe_set.hpp"
#include "mll/store/store.hpp"

namespace mll::test {

struct SyntheticStoreShape {
  int nodes = 40;
  int images = 300;
  int per_node = 12;
  int dim = 24;
  std::vector<std::string> models = {"m-a", "m-b", "m-c"};
  // Nodes whose caption rows are made equal to node 1's in every model: exact logit ties.
  std::vector<int> tied_with_node1 = {};
};

inline graph::Graph synthetic_graph(int count) {
  std::vector<graph::Node> nodes(static_cast<std::size_t>(count));
  std::vector<graph::Edge> edges;
  for (int v = 0; v < count; ++v) {
    char wnid[32];
    std::snprintf(wnid, sizeof wnid, "n%08d", v + 1);
    auto& node = nodes[static_cast<std::size_t>(v)];
    node.wnid = wnid;
    node.name = "concept" + std::to_string(v) + ".n.01";
    node.lemmas = {"concept" + std::to_string(v)};
    node.definition = "synthetic concept " + std::to_string(v);
    node.caption = node.lemmas[0] + " which is " + node.definition;
    node.seed = v > 0;
    if (v > 0) edges.push_back({static_cast<std::int32_t>(v), 0});
  }
  return graph::Graph(nodes, edges, {}, "synthetic");
}

inline std::vector<float> random_unit_rows(std::mt19937_64& rng, std::int64_t rows, int dim) {
  std::normal_distribution<float> normal;
  std::vector<float> out(static_cast<std::size_t>(rows * dim));
  for (std::int64_t r = 0; r < rows; ++r) {
    double norm = 0;
    for (int t = 0; t < dim; ++t) {
      const float x = normal(rng);
      out[static_cast<std::size_t>(r * dim + t)] = x;
      norm += static_cast<double>(x) * x;
    }
    for (int t = 0; t < dim; ++t) {
      out[static_cast<std::size_t>(r * dim + t)] =
          static_cast<float>(out[static_cast<std::size_t>(r * dim + t)] / std::sqrt(norm));
    }
  }
  return out;
}

// Creates the store at `path` with every model of `shape` done. Returns it opened for writing.
inline store::Store make_synthetic_store(const std::string& path,
                                         const SyntheticStoreShape& shape = {}) {
  const graph::Graph g = synthetic_graph(shape.nodes);
  std::mt19937_64 rng(11);
  probe::ProbeSet probe;
  probe.root = "/nonexistent/images";
  probe.per_node = shape.per_node;
  probe.graph_hash = g.content_hash();
  for (int i = 0; i < shape.images; ++i) {
    probe.image_paths.push_back("img" + std::to_string(i) + ".jpg");
    probe.image_sizes.push_back(1000);
  }
  probe.node_offsets.push_back(0);
  std::uniform_int_distribution<int> pick(0, shape.images - 1);
  for (int v = 0; v < shape.nodes; ++v) {
    std::vector<std::int32_t> list;
    while (static_cast<int>(list.size()) < shape.per_node) {
      const auto i = static_cast<std::int32_t>(pick(rng));
      if (std::find(list.begin(), list.end(), i) == list.end()) list.push_back(i);
    }
    std::sort(list.begin(), list.end());
    probe.node_images.insert(probe.node_images.end(), list.begin(), list.end());
    probe.node_offsets.push_back(static_cast<std::int64_t>(probe.node_images.size()));
  }
  auto s = store::Store::create(path, g, probe, true);
  const auto captions = static_cast<std::int64_t>(s.captions().size());
  for (std::size_t m = 0; m < shape.models.size(); ++m) {
    store::ModelRecord record;
    record.id = shape.models[m];
    record.model_sha256 = std::string(64, static_cast<char>('a' + m % 6));
    record.sidecar_json = "{}";
    s.register_model(record);
    auto text = random_unit_rows(rng, captions, shape.dim);
    const auto c1 = s.node_caption()[1];
    for (const int v : shape.tied_with_node1) {
      const auto c = s.node_caption()[static_cast<std::size_t>(v)];
      std::copy_n(text.begin() + c1 * shape.dim, shape.dim, text.begin() + c * shape.dim);
    }
    s.commit_unit(record.id, {store::UnitKind::kText, 0, captions}, text.data(), shape.dim);
    const auto rows = random_unit_rows(rng, shape.images, shape.dim);
    s.commit_unit(record.id, {store::UnitKind::kImage, 0, shape.images}, rows.data(), shape.dim);
    store::ModelLabels labels;
    labels.node_top1.assign(static_cast<std::size_t>(shape.nodes), 0.5f);
    labels.node_confusion.assign(static_cast<std::size_t>(shape.nodes * 3), -1);
    labels.subtree_top1.assign(static_cast<std::size_t>(shape.nodes), 0.5f);
    store::FinishInfo info;
    info.logit_scale = 50.0 + 10.0 * static_cast<double>(m);
    s.finish_model(record.id, labels, info);
  }
  return s;
}

}  // namespace mll::test
