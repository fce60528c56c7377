// Small hermetic inputs for label store tests: a WordNet graph of a few seeds (~20 nodes), a
// probe set of fake image paths, and deterministic unit-norm "embeddings" of width 8.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "mll/graph/graph.hpp"
#include "mll/probe/probe_set.hpp"
#include "mll/store/store.hpp"
#include "wordnet_fixture.hpp"

namespace mll::test {

inline constexpr std::int64_t kDim = 8;

// dog, car (and, for the grown graph, banana): ancestor closures of ~20 and ~30 nodes.
inline graph::Graph small_graph(bool grown = false) {
  std::vector<graph::Seed> seeds{{2084071, "dog"}, {2958343, "car"}};
  if (grown) seeds.push_back({7753592, "banana"});
  return graph::build_graph(wordnet(), seeds, {});
}

// `images` fake images; every node serves three of them. Growing keeps the first images.
inline probe::ProbeSet small_probe(const graph::Graph& g, std::size_t images) {
  probe::ProbeSet p;
  p.root = "/nonexistent/images";
  for (std::size_t i = 0; i < images; ++i) {
    p.image_paths.push_back("n0000000" + std::to_string(i % 10) + "/img_" + std::to_string(i) +
                            ".jpg");
    p.image_sizes.push_back(static_cast<std::int64_t>(1000 + i));
  }
  p.node_offsets.push_back(0);
  for (std::size_t v = 0; v < g.size(); ++v) {
    for (std::size_t k = 0; k < 3; ++k) {
      p.node_images.push_back(static_cast<std::int32_t>((v * 3 + k) % images));
    }
    p.node_offsets.push_back(static_cast<std::int64_t>(p.node_images.size()));
  }
  p.per_node = 3;
  p.seed = 0;
  p.graph_hash = g.content_hash();
  return p;
}

// The embedding a fake model gives row `row` of `kind`: a function of (model, kind, row) only,
// so any unit size and any interruption give the same rows.
inline std::vector<float> fake_row(const std::string& model, store::UnitKind kind,
                                   std::int64_t row) {
  std::seed_seq seq{static_cast<std::uint32_t>(std::hash<std::string>{}(model)&0xffffffffu),
                    static_cast<std::uint32_t>(kind), static_cast<std::uint32_t>(row)};
  std::mt19937 rng(seq);
  std::vector<float> v(kDim);
  double sum = 0;
  for (auto& x : v) {
    x = static_cast<float>(static_cast<double>(rng()) / 4294967296.0 * 2.0 - 1.0);
    sum += static_cast<double>(x) * x;
  }
  for (auto& x : v) x = static_cast<float>(x / std::sqrt(sum));
  return v;
}

inline std::vector<float> fake_rows(const std::string& model, const store::Unit& unit) {
  std::vector<float> rows;
  for (std::int64_t r = unit.begin; r < unit.end; ++r) {
    const auto v = fake_row(model, unit.kind, r);
    rows.insert(rows.end(), v.begin(), v.end());
  }
  return rows;
}

inline store::ModelRecord fake_record(const std::string& id) {
  store::ModelRecord r;
  r.id = id;
  r.model_sha256 = std::string(64, 'a' + static_cast<char>(id.back() % 6));
  r.sidecar_json = "{\"id\": \"" + id + "\"}";
  return r;
}

inline store::ModelLabels fake_labels(std::size_t nodes) {
  store::ModelLabels l;
  for (std::size_t v = 0; v < nodes; ++v) {
    l.node_top1.push_back(static_cast<float>(v) / static_cast<float>(nodes));
    l.subtree_top1.push_back(0.5f);
    for (int k = 0; k < 3; ++k) l.node_confusion.push_back(k == 0 ? static_cast<int>(v) : -1);
  }
  return l;
}

// Registers and labels `id` completely with the given unit sizes.
inline void label_model(store::Store& s, const std::string& id, std::int64_t image_unit = 7,
                        std::int64_t text_unit = 5) {
  s.register_model(fake_record(id));
  for (const auto& unit : s.missing_units(id, image_unit, text_unit)) {
    s.commit_unit(id, unit, fake_rows(id, unit).data(), kDim);
  }
  store::FinishInfo info;
  info.logit_scale = 100.0;
  info.config_json = "{\"batch\": 4}";
  s.finish_model(id, fake_labels(s.graph().size()), info);
}

}  // namespace mll::test
