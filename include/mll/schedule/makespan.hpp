// The makespan planner behind `mll plan`: how long labeling a zoo takes on N GPUs, simulated
// without running a model (design.md "Distribution").
//
// The dynamic strategy is the real one: models sharing a preprocessing config form a group
// (decode once, run all), each group's P images are cut into shards of `unit` images, and N
// simulated workers ask schedule::Scheduler -- the class the MPI coordinator uses -- for their next
// shard whenever they become free. A worker that switches groups pays the new group's load time
// (fp16 weights / load bandwidth); a shard costs unit x (sum of the group's GFLOPs per image) /
// GPU throughput, or unit / decode rate when decoding is slower. The baseline is static
// round-robin over whole models: model i on GPU i mod N, each GPU loading and running its models
// one after another (each model decoding for itself).
//
// Efficiency is the pure compute work (sum over models of P x GFLOPs / throughput) divided by
// N x makespan: load time, decode stalls and idle GPUs all lower it. Nothing here is collective.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mll/zoo/model_spec.hpp"

namespace mll::schedule {

// One model as the planner sees it.
struct MakespanModel {
  std::string id;
  std::string group_key;          // models with equal keys form one group
  std::int64_t params = 0;        // parameters (both towers: what gets loaded)
  double gflops_per_image = 0.0;  // image tower, one image, 2 FLOPs per multiply-add
};

struct MakespanOptions {
  int gpus = 8;
  std::int64_t images = 150000;  // P: probe images every model encodes
  std::int64_t unit = 1024;      // images per shard (`mll label --unit`)
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
  int loads = 0;                // group (dynamic) or model (static) loads
  std::int64_t units = 0;       // shards (dynamic) or models (static) run
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
  double total_decode_stall_s() const;
  double busy_min_s() const;
  double busy_max_s() const;
  double busy_mean_s() const;
};

struct MakespanGroup {
  std::string key;
  std::vector<std::string> models;
  double gflops_per_image = 0.0;  // sum over the group's models
  double bytes = 0.0;             // weights loaded when a worker switches to the group
  double load_s = 0.0;
  std::int64_t shards = 0;
  double shard_s = 0.0;         // time of one full shard (unit images)
  bool decode_limited = false;  // decoding is slower than the group's compute
};

struct MakespanResult {
  MakespanOptions options;
  std::size_t models = 0;
  std::vector<MakespanGroup> groups;  // most expensive first (the order labeling plans them in)
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
// unit < 1, non-positive throughput or bandwidth, negative decode cores) or no models.
MakespanResult simulate(const std::vector<MakespanModel>& models, const MakespanOptions& options);

// The human-readable report (both strategies side by side, groups, limits). Does not throw.
std::string makespan_report(const MakespanResult& result);

// The same as JSON (stable keys). Does not throw.
std::string makespan_json(const MakespanResult& result);

}  // namespace mll::schedule
