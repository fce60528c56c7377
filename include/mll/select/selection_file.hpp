// The selection file (docs/selection.md, "selection.json"): per class the chosen models with their
// scores and the matched nodes with their weights, plus every candidate's scores so that a person
// (or tools/select_reference.py) can see why. Also stored in the label store as
// `<store>.d/selections/<task>.json`. Nothing here is collective.
#pragma once

#include <string>
#include <vector>

#include "mll/select/match.hpp"
#include "mll/select/selection.hpp"
#include "mll/select/task.hpp"

namespace mll::select {

// What a reader of a selection file needs (reuse, reports).
struct SelectionFile {
  std::string task;
  std::vector<std::string> classes;
  std::vector<std::string> models;  // candidates in model order
  std::size_t k = 1;
  double alpha = 0.7;
  std::string metric, mix;
  // Per class: chosen model ids (best first) with r, and matched nodes (graph wnids) with z.
  std::vector<std::vector<Choice>> chosen;
  std::vector<std::vector<std::string>> node_wnids;
  std::vector<std::vector<std::string>> node_names;
  std::vector<std::vector<double>> node_weights;
  std::vector<std::vector<std::string>> warnings;  // per class
  std::vector<std::string> global_warnings;
};

// The JSON text of a selection. Does not throw (InternalError on inconsistent sizes).
std::string selection_json(const store::Store& store, const Task& task, const MatchResult& match,
                           const TaskNodes& nodes, const SelectionResult& result,
                           const SelectOptions& options);

// Parses a selection file. Throws DataError naming the file for missing or malformed content.
SelectionFile read_selection(const std::string& path);

// Reads class matches (graph node indices and weights per class) back from a selection file or a
// matches file of the same shape ({"classes": [{"name", "matched_nodes": [{"wnid", "weight"}]}]}),
// so that selection can be rerun with fixed matches. Throws DataError naming the file when a class
// of `task` is missing or a wnid is not in the store's graph.
MatchResult read_matches(const std::string& path, const store::Store& store, const Task& task);

// Writes `text` to `path` atomically (temporary file, rename). Throws IoError.
void write_text_atomic(const std::string& path, const std::string& text);

// `<store>.d/selections/<task>.json`: where a selection is kept inside the store.
std::string stored_selection_path(const std::string& store_path, const std::string& task_name);

}  // namespace mll::select
