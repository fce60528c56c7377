// Selection (method.md section 4): per-model scores of the task's matched nodes from the stored
// embeddings, per-class scores, the alpha mix and top-k. The formulas are pure functions so that
// tests can check them on hand-computed examples; select_models applies them to a store.
//
// Cost: per model, the rows of the task's images and nodes are read (not the whole tables) and
// multiplied once, in row blocks spread over the CPUs this process may use; the next model is read
// while one is scored, so at most two models' task rows are in memory (memory does not grow with
// the number of models). Nothing is collective.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mll/store/store.hpp"

namespace mll::select {

enum class Metric { kPrecision, kRecall, kF1 };
enum class Mix { kAll, kOthers };
// "precision" | "recall" | "f1", "all" | "others"; UsageError otherwise.
Metric parse_metric(const std::string& text);
Mix parse_mix(const std::string& text);
std::string to_string(Metric metric);
std::string to_string(Mix mix);

// ---- The formulas (pure; none throws except where noted) ----------------------------------------

// pred(x) = argmax over the K task nodes of logits[x, :] (rows x K, row-major); the first maximum
// wins, so ties go to the task node with the smaller index (the smaller graph node index).
std::vector<std::int32_t> restricted_predictions(const float* logits, std::int64_t rows,
                                                 std::int64_t k);
// The same into `pred` (rows entries), for k >= 1.
void restricted_predictions(const float* logits, std::int64_t rows, std::int64_t k,
                            std::int32_t* pred);

struct NodeCounts {
  std::int64_t tp = 0, fp = 0, fn = 0;
  bool operator==(const NodeCounts& o) const noexcept {
    return tp == o.tp && fp == o.fp && fn == o.fn;
  }
};

// Per task node v: TP = #{x in X_v : pred = v}, FN = |X_v| - TP,
// FP = #{x in X_u, u != v : pred = v}. `members[v]` lists the rows (into `pred`) of v's probe
// images; an image shared by several nodes appears in each of their lists and counts once per
// node, with that node as its label. Throws InternalError for out-of-range rows or predictions.
std::vector<NodeCounts> node_counts(const std::vector<std::vector<std::int64_t>>& members,
                                    const std::vector<std::int32_t>& pred);

// precision TP/(TP+FP), recall TP/(TP+FN), F1 2TP/(2TP+FP+FN); 0 when the denominator is 0.
double node_score(const NodeCounts& counts, Metric metric);

// One class's matched nodes: indices into the task node list and weights z (>= 0, sum 1).
struct ClassNodes {
  std::vector<std::int32_t> nodes;
  std::vector<double> weights;
};

// p_{m,y} = sum over v in N_y of z_{y,v} p_{m,v}, for every class.
std::vector<double> class_scores(const std::vector<double>& node_scores,
                                 const std::vector<ClassNodes>& classes);

// r_y = alpha p_y + (1 - alpha) mean over y' of p_{y'} (kAll) or over y' != y (kOthers; with a
// single class there are no others and the mean is p_y itself).
std::vector<double> mixed_scores(const std::vector<double>& class_scores, double alpha, Mix mix);

// Indices of the k largest scores (k clamped to the count), largest first; equal scores keep
// their order (ties break by model order).
std::vector<std::size_t> top_k(const std::vector<double>& scores, std::size_t k);

// ---- Applying them to a store -------------------------------------------------------------------

struct SelectOptions {
  std::size_t k = 1;
  double alpha = 0.7;
  Metric metric = Metric::kPrecision;
  Mix mix = Mix::kAll;
  std::int64_t block_rows = 512;  // image rows per product (its logits stay in cache)
  int threads = 0;  // scoring threads; 0: the CPUs this process may use (capped by OMP_NUM_THREADS)
};

// The task's nodes and the images they need, derived from the class matches.
struct TaskNodes {
  std::vector<std::int32_t> nodes;                 // V_T: sorted graph node indices
  std::vector<ClassNodes> classes;                 // N_y as indices into `nodes`
  std::vector<std::int32_t> images;                // sorted unique probe image ids
  std::vector<std::vector<std::int64_t>> members;  // per task node: rows into `images`
};

// Builds V_T and the image lists. `class_nodes[y]` holds graph node indices and `weights[y]` z.
// Throws UsageError when a node index is out of range or the weights are not a distribution.
TaskNodes task_nodes(const store::Store& store,
                     const std::vector<std::vector<std::int32_t>>& class_nodes,
                     const std::vector<std::vector<double>>& weights);

struct ModelScores {
  std::string model;
  double logit_scale = 0.0;
  std::vector<NodeCounts> counts;    // per task node
  std::vector<double> node_scores;   // p_{m,v}
  std::vector<double> class_scores;  // p_{m,y}
  std::vector<double> mixed;         // r_{m,y}
};

// Reads model `id`'s embeddings of the task's images and nodes and computes its scores.
// `io_seconds` / `compute_seconds` accumulate the time spent reading and computing. Sets no
// thread count (select_models does).
// Throws what the store's readers throw (UsageError for an unknown model, DataError).
ModelScores score_model(const store::Store& store, const std::string& id, const TaskNodes& nodes,
                        const SelectOptions& options, double* io_seconds = nullptr,
                        double* compute_seconds = nullptr);

struct Choice {
  std::string model;
  double score = 0.0;        // r_{m,y}
  double class_score = 0.0;  // p_{m,y}
};

struct SelectionResult {
  std::vector<std::string> models;          // candidates in model order
  std::vector<ModelScores> scores;          // per candidate, same order
  std::vector<std::vector<Choice>> chosen;  // per class: F_y, best first
  double io_seconds = 0.0, compute_seconds = 0.0;
};

// Scores every model of `models` (in that order: the model order ties break by) and picks the
// top k per class. Uses `store` from a second thread while it runs (the caller must not use it
// meanwhile); io_seconds then overlaps compute_seconds. Throws UsageError when `models` is empty
// or names a model that is not done in the store, and what the store's readers throw.
SelectionResult select_models(const store::Store& store, const std::vector<std::string>& models,
                              const TaskNodes& nodes, const SelectOptions& options);

// The candidate models: every done model of the store, in `order` first (the zoo manifest's
// order; ids not in the store are skipped), then the rest in id order; restricted to `only` when
// it is not empty (UsageError for an id of `only` that is not a done model of the store).
std::vector<std::string> candidate_models(const store::Store& store,
                                          const std::vector<std::string>& order,
                                          const std::vector<std::string>& only);

}  // namespace mll::select
