// The synthetic world (docs/synthetic-world.md): a model zoo, probe images and target tasks
// generated on a WordNet graph, with a known ground truth, so that the whole pipeline (label,
// select, reuse) can run and be checked without downloadable weights or photos.
//
// Every node of the graph gets a concept vector; its images render that vector as a grid of
// colour cells; the authored models' image towers read the cells back with a per-domain fidelity
// (specialists are sharp on a few domains and blurry elsewhere, generalists are uniformly good or
// bad); their text towers map the tokens of captions and class names onto the same concept
// vectors. Competence therefore shows only in what a model computes, never in a file that
// selection reads. Deterministic: the same graph, options and seed give byte-identical files.
// Nothing here is collective.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mll/graph/graph.hpp"

namespace mll::synth {

// The pooled grid the small models see: an image is G x G cells of one colour each (plus
// texture that averages out), so a model's input feature vector has 3 * G * G entries.
inline constexpr int kGrid = 8;

struct WorldOptions {
  int models = 12;
  std::uint64_t seed = 0;
  int images_per_concept = 4;      // probe images per seed node
  int image_size = 32;             // PNG side and the models' input size; a multiple of 16
  int tasks = 5;                   // target tasks (fewer when the graph offers fewer subtrees)
  int classes_per_task = 10;       // at most; a task's subtree may hold fewer seeds
  int task_images_per_class = 20;  // labeled test images per task class
  int domains = 6;                 // groups of subtrees a model can be sharp or blurry on
};

// A domain: seeds under a few neighbouring subtrees (contiguous in the graph's depth-first
// order) that share one block of the image feature vector.
struct Domain {
  std::string name;                 // the first lemmas of its two largest subtrees
  std::vector<std::string> roots;   // wnids of its subtrees
  std::vector<std::int32_t> seeds;  // graph node indices
};

struct ModelTruth {
  std::string id;
  std::string kind;                 // "specialist" | "generalist"
  std::vector<int> sharp_domains;   // domain indices a specialist is sharp on
  std::vector<double> blur;         // per domain: weight of the model's reading noise
  double imagenet_top1 = 0.0;       // zero-shot top-1 over all seeds (written to the sidecar)
  std::vector<double> domain_top1;  // per domain: top-1 over all graph nodes, as labeling counts
};

struct TaskTruth {
  std::string name;
  std::string style;  // "clean" | "faded"
  std::string root;   // wnid of the subtree the classes come from
  std::vector<std::string> classes;
  std::vector<std::string> wnids;                 // the node each class names
  std::vector<double> accuracy;                   // per model (zoo order): zero-shot top-1
  std::vector<std::vector<double>> class_recall;  // [model][class]
  std::string best_model;                         // highest accuracy (the oracle)
  std::string inb_model;                          // highest imagenet_top1
};

struct WorldReport {
  std::string out_dir;
  std::vector<Domain> domains;
  std::vector<ModelTruth> models;  // zoo order
  std::vector<TaskTruth> tasks;
  std::size_t probe_images = 0;
  std::size_t task_images = 0;
};

// Generates the world into `out_dir` (created): images/<wnid>/*.png for every seed node,
// models/<id>.pt|json and zoo.json, tasks/<name>.json with tasks/<name>/<class>/*.png, and
// truth.json. An existing non-empty `out_dir` is refused unless `force` (then the world's own
// entries are replaced). Throws UsageError (bad options, a graph without seeds, out_dir exists),
// DataError (the CLIP vocabulary is missing), IoError (a file cannot be written).
WorldReport write_world(const graph::Graph& graph, const WorldOptions& options,
                        const std::string& out_dir, bool force = false);

}  // namespace mll::synth
