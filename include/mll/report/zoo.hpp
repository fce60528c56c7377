// The zoo overview and the model card (docs/reports.md): what a label store says about its
// models, for people. The overview is one page over every model: a models x top-level subtrees
// heatmap of subtree_top1, each model's best and worst subtrees, the store's provenance and how
// far labeling has got. The card is one model's page. Both read a store opened read-only and
// write self-contained HTML (report/html.hpp) or JSON with the same numbers. Nothing here is
// collective.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mll/graph/graph.hpp"
#include "mll/probe/probe_set.hpp"
#include "mll/store/store.hpp"

namespace mll::report {

struct OverviewOptions {
  int columns = 16;     // at most this many top-level subtrees (heatmap columns)
  int top = 3;          // best and worst subtrees listed per model
  int min_images = 50;  // a ranked subtree has at least min(min_images, per_node) images below
};

struct SubtreeScore {
  std::int32_t node = -1;
  std::string name;             // "dog.n.01"
  double value = 0.0;           // subtree_top1
  std::size_t nodes_below = 0;  // descendants in the graph
  // The node's most frequent wrong predictions (node_confusion), by name; model cards only.
  std::vector<std::string> confused_with;
};

// The heatmap's columns: starting from the graph's roots, the node with the largest subtree is
// replaced by its children (those with probe images below them) while the frontier stays within
// `columns` nodes. A chain of single children ("entity" -> "physical entity" -> ...) is thus
// walked down to where the graph branches, and the columns partition the labeled graph at the
// coarsest level that still says something. Graph order. Does not throw.
std::vector<std::int32_t> top_level_subtrees(const graph::Graph& graph,
                                             const probe::ProbeSet& probe, int columns);

// Inner nodes with enough probe images below them (see OverviewOptions::min_images), best first
// by subtree_top1 (ties in graph order): what `mll zoo show` lists. Throws InternalError when
// the labels do not fit the graph.
std::vector<SubtreeScore> ranked_subtrees(const graph::Graph& graph, const probe::ProbeSet& probe,
                                          const store::ModelLabels& labels, int min_images);

struct ModelRow {
  store::ModelRecord record;
  store::Progress progress;
  // Whether the model's labels are of the store's current graph (a model finished before the
  // store grew is pending again and its labels describe the old graph: no values then).
  bool labeled = false;
  std::int64_t dim = 0;
  std::string mll_version;
  std::vector<double> values;  // subtree_top1 per column; NaN when not labeled
  std::vector<SubtreeScore> best, worst;
};

struct ZooOverview {
  std::string store_path;
  std::size_t graph_nodes = 0, probe_images = 0, captions = 0;
  std::string graph_hash, probe_hash, wordnet_sha256;
  std::int32_t per_node = 0;
  std::vector<std::int32_t> columns;
  std::vector<std::string> column_names;
  std::vector<std::size_t> column_images;          // probe memberships in each column's subtree
  std::vector<ModelRow> models;                    // the store's registry order
  std::int64_t images_done = 0, images_total = 0;  // over every model
};

// Reads what the overview shows. Throws what the store's readers throw (DataError for a damaged
// model file, IoError).
ZooOverview zoo_overview(const store::Store& store, const OverviewOptions& options);
std::string zoo_overview_html(const ZooOverview& overview);
std::string zoo_overview_json(const ZooOverview& overview);

struct ModelCard {
  ModelRow row;
  store::ModelInfo info;
  std::string sidecar_json;
  std::string store_path;
  std::vector<std::string> column_names;  // the overview's columns, values in row.values
  std::vector<SubtreeScore> best, worst;  // OverviewOptions::top each, with confusions
};

// One model's card. Throws UsageError when the store has no model `id` or has not labeled it.
ModelCard model_card(const store::Store& store, const std::string& id,
                     const OverviewOptions& options);
std::string model_card_html(const ModelCard& card);

}  // namespace mll::report
