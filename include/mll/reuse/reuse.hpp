// Reusing the selected models on the task's images (method.md sections 5 and 6): each needed
// model runs once over the images (predict_model: the step that can be spread over ranks, one
// model per call), then combine() builds MLL's ensemble and every baseline from those predictions.
// Nothing here is collective; the MPI layer can call predict_model on several ranks and combine on
// one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mll/reuse/ensemble.hpp"
#include "mll/select/selection_file.hpp"
#include "mll/select/task.hpp"
#include "mll/store/store.hpp"
#include "mll/zoo/model_spec.hpp"
#include "mll/zoo/runner.hpp"

namespace mll::reuse {

struct ReuseOptions {
  std::vector<std::string> templates = {"a photo of a {class}."};
  zoo::RunOptions run;
  int batch = 32;
  int decode_threads = 2;
  int prefetch_batches = 4;
  bool baselines = true;          // false: run only the selected models (no baselines)
  int random_seeds = 5;           // random-selection baseline: seeds 0..n-1
  std::uint64_t random_seed = 0;  // added to each seed
  double eps = kEntropyEps;
};

// Reads prompt templates, one per line (blank lines and '#' comments skipped); each must contain
// "{class}", or "{c}" as CLIP_benchmark's zeroshot_classification_templates.txt writes it.
// Throws DataError naming the file and line.
std::vector<std::string> read_templates(const std::string& path);

// The class prompt embeddings of one model: per class the mean of its templates' (unit) embeddings,
// renormalised. Returns classes x d row-major. Throws what the model and tokenizer throw.
std::vector<float> class_prompt_embeddings(const zoo::Model& model, const zoo::ModelSpec& spec,
                                           const std::vector<std::string>& classes,
                                           const std::vector<std::string>& templates,
                                           std::int64_t* dim);

// One model's P(y|x) over `image_paths` (decoded and preprocessed as labeling does, in background
// threads). Throws DataError naming an image that cannot be decoded or the model that fails.
MatrixD predict_model(const zoo::ModelSpec& spec, const std::vector<std::string>& image_paths,
                      const std::vector<std::string>& classes, const ReuseOptions& options);

struct MethodResult {
  std::string name;  // "MLL", "INB", "INB-3", "Random", "All models", "Oracle"
  std::string description;
  std::vector<std::vector<std::string>> models;  // per class (one entry per class)
  bool evaluated = false;
  Metrics metrics;                                          // for Random: of seed 0
  int runs = 1;                                             // Random: number of seeds
  double top1_std = 0.0, top5_std = 0.0, recall_std = 0.0;  // spread over seeds (population std)
  double top1_mean = 0.0, top5_mean = 0.0, recall_mean = 0.0;
  std::vector<std::int32_t> predicted;
};

struct ReuseReport {
  std::string task;
  std::vector<std::string> classes;
  std::vector<std::string> images;
  std::vector<std::int32_t> labels;  // -1 when unlabeled
  bool labeled = false;
  select::SelectionFile selection;
  std::vector<std::string> models_run;    // each run once, in this order
  std::map<std::string, double> general;  // INB's general accuracy per candidate
  std::string general_source;             // "imagenet_top1" or "mean node_top1"
  std::vector<MethodResult> methods;      // MLL first
  // Heatmap: node_top1 of each candidate (rows) over the task's matched nodes (columns).
  std::vector<std::string> heat_models, heat_nodes;
  std::vector<double> heat_values;
  std::vector<std::string> warnings;
  double predict_seconds = 0.0;
};

// The general accuracy INB ranks by: every candidate's sidecar imagenet_top1 when all have one,
// else the mean node_top1 over the graph nodes with probe images. Returns the source's name.
std::string general_accuracy(const store::Store& store, const std::vector<std::string>& models,
                             std::map<std::string, double>* out);

// Builds every method from the predictions (`predictions` must hold each model the methods
// need). Labels of -1 mean unlabeled: no metrics. Throws InternalError for missing predictions.
void combine(ReuseReport& report, const std::map<std::string, MatrixD>& predictions,
             const ReuseOptions& options);

// The whole reuse step: checks the selection against the store and task, runs each needed model
// once, combines, fills the heatmap. Throws DataError when the selection names a model the store
// lacks or does not belong to the task, UsageError when the zoo lacks a model's file.
ReuseReport run_reuse(const store::Store& store, const select::Task& task,
                      const select::SelectionFile& selection, const zoo::ZooManifest& zoo,
                      const ReuseOptions& options);

// report.json, report.html (self-contained) and predictions.csv in `dir` (created), and for a
// labeled task per_class.csv and confusion.csv (docs/reports.md). IoError.
void write_report(const ReuseReport& report, const std::string& dir);
std::string report_json(const ReuseReport& report);
// Accuracy chart, methods table (top-5 only when the task has more than 5 classes), per-class
// accuracy of every method, a confusion-matrix heatmap per method, the chosen models and the
// node top-1 heatmap; every heatmap with axis titles and a colour legend.
std::string report_html(const ReuseReport& report);
// Per class: its images and every evaluated method's accuracy (recall), one column per method.
std::string per_class_csv(const ReuseReport& report);
// Long form: method, true class, predicted class, images.
std::string confusion_csv(const ReuseReport& report);
std::string markdown_summary(const ReuseReport& report);

}  // namespace mll::reuse
