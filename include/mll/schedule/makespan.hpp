// The makespan planner behind `mll plan`: how long labeling a zoo takes on N GPUs, simulated
// without running a model (design.md "Distribution").
//
// The dynamic strategy is the real one: models sharing a preprocessing config form a group
// (decode once, run all), cut by schedule::work_rule into sub-groups that fit the memory budget
// and the load cap, each sub-group's P images cut into shards of its unit (cost-sized by the rule,
// or `unit` images when fixed), and N simulated workers ask schedule::Scheduler -- the class the
// MPI coordinator uses, with each sub-group's load as its switch cost -- for their next shard
// whenever they become free. A worker that switches sub-groups pays the new one's load time (fp16
// weights / load bandwidth), or with `prefetch` only what is left of a load it started while its
// last shards ran (when both sub-groups fit the memory budget together). A shard costs its images
// x (sum of the sub-group's GFLOPs per image) / GPU throughput, or images / decode rate when
// decoding is slower; only a group's first sub-group decodes, the others read its cached crops
// (free). The baseline is static round-robin over whole models: model i on GPU i mod N, each GPU
// loading and running its models one after another (each model decoding for itself).
//
// Efficiency is the pure compute work (sum over models of P x GFLOPs / throughput) divided by
// N x makespan: load time, decode stalls and idle GPUs all lower it. Nothing here is collective.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mll/schedule/work_rule.hpp"
#include "mll/zoo/model_spec.hpp"

namespace mll::schedule {

struct MakespanOptions {
  int gpus = 8;
  std::int64_t images = 150000;  // P: probe images every model encodes
  std::int64_t unit = 0;         // images per shard (`mll label --unit`); 0: the work rule's
  // Bytes of device memory per GPU for models (0: no limit). 80 GB: the H100 / A100-80GB class.
  std::int64_t memory = 80'000'000'000;
  // Load a worker's next sub-group while its last shards of the current one run.
  bool prefetch = false;
  int batch = 32;  // images per forward pass (the shard grid and the activation estimate)
  // Effective (achieved, not peak) throughput of one GPU in TFLOP/s. 100 is a conservative
  // figure for an H100-class GPU in fp16/bf16 (989 TFLOP/s dense peak) running batched ViT
  // inference from eager PyTorch/libtorch.
  double gpu_tflops = 100.0;
  // Bandwidth at which a worker gets a model onto its GPU, in GB/s (1e9 bytes/s): reading the
  // checkpoint from a shared filesystem dominates the host-to-device copy.
  double load_gbps = 2.0;
  double bytes_per_param = 2.0;  // fp16 / bf16 weights
  // CPU cores decoding images for each GPU; 0: decoding never limits.
  double decode_cores_per_gpu = 0.0;
  // Images one core decodes and preprocesses per second (environment.md: ~167/s for a 500x375
  // JPEG to 224 px with PIL on one core).
  double decode_images_per_core = 170.0;
};

// The figures of one GPU over a strategy's run.
struct GpuLoad {
  double busy_s = 0.0;          // load + compute (+ decode stalls)
  double load_s = 0.0;          // loading models
  double compute_s = 0.0;       // pure compute at the stated throughput
  double decode_stall_s = 0.0;  // time beyond compute because decoding was slower
  double hidden_load_s = 0.0;   // load time overlapped with compute (prefetch)
  int loads = 0;                // sub-group (dynamic) or model (static) loads
  std::int64_t units = 0;       // shards (dynamic) or models (static) run
  std::int64_t memory = 0;      // most bytes of models held at once (estimate)
};

struct StrategyResult {
  std::string name;  // "dynamic" | "static-round-robin"
  double makespan_s = 0.0;
  double efficiency = 0.0;  // total compute / (gpus x makespan)
  // The longest single piece of work a GPU cannot split (load + the largest shard for dynamic,
  // load + run of the largest model for static): no schedule finishes earlier than this.
  double largest_unit_s = 0.0;
  std::vector<GpuLoad> gpus;
  double total_load_s() const;
  double total_hidden_load_s() const;
  std::int64_t memory_max() const;  // the largest GpuLoad::memory
  double total_decode_stall_s() const;
  double busy_min_s() const;
  double busy_max_s() const;
  double busy_mean_s() const;
};

// One sub-group of the plan (the whole preprocessing group when it is not split).
struct MakespanGroup {
  std::string key;
  int part = 0;  // index among the preprocessing group's sub-groups; part 0 decodes
  std::vector<std::string> models;
  double gflops_per_image = 0.0;  // sum over the sub-group's models
  double bytes = 0.0;             // weights loaded when a worker switches to the sub-group
  std::int64_t footprint = 0;     // weights + one batch's working set (schedule::group_footprint)
  double load_s = 0.0;
  std::int64_t unit = 0;  // images per shard
  std::int64_t shards = 0;
  double shard_s = 0.0;         // time of one full shard (unit images)
  bool decode_limited = false;  // decoding is slower than the sub-group's compute
};

struct MakespanResult {
  MakespanOptions options;
  std::size_t models = 0;
  std::vector<MakespanGroup> groups;  // sub-groups, most expensive first (labeling's order)
  std::size_t preprocess_groups = 0;  // distinct preprocessing keys
  std::int64_t load_cap = 0;          // work rule: bytes a sub-group may load (0: none)
  std::int64_t subgroup_cap = 0;      // min(memory, load cap) applied (0: none)
  double total_compute_s = 0.0;       // GPU-seconds of pure compute, all models
  double ideal_s = 0.0;               // total_compute_s / gpus
  StrategyResult dynamic;
  StrategyResult round_robin;
  // One line per effect that keeps the dynamic strategy from `ideal_s`, biggest first.
  std::vector<std::string> limits;
};

// Group key of a sidecar: the preprocessing identity labeling groups models by (image size,
// resize mode, crop, interpolation, mean, std). Does not throw.
std::string preprocess_group_key(const zoo::ModelSpec& spec);

// Planner models of loaded sidecars (zoo order). Throws DataError naming a model without
// `params` or `gflops_per_image` (the planner needs both).
std::vector<MakespanModel> makespan_models(const std::vector<zoo::ModelSpec>& specs);

// Reads a zoo description (data/zoo/openclip49.json: {"models": [{"id", "params",
// "gflops_per_image", "preprocess" | image geometry, ...}]}). `cost` picks the per-image cost:
// "image" (gflops_per_image, the image tower) or "pair" (gflops_pair, image + text tower of one
// pair, the figure open_clip's results table prints). Throws DataError (missing file, bad JSON,
// missing fields, duplicate ids), UsageError (unknown cost).
std::vector<MakespanModel> load_zoo_description(const std::string& path,
                                                const std::string& cost = "image");

// Simulates both strategies. Throws UsageError for options out of range (gpus < 1, images < 1,
// unit < 0, negative memory, non-positive throughput or bandwidth, negative decode cores), no
// models, or a model larger than the memory budget (naming it).
MakespanResult simulate(const std::vector<MakespanModel>& models, const MakespanOptions& options);

// The human-readable report (both strategies side by side, groups, limits). Does not throw.
std::string makespan_report(const MakespanResult& result);

// The same as JSON (stable keys). Does not throw.
std::string makespan_json(const MakespanResult& result);

}  // namespace mll::schedule
