// How labeling cuts a zoo's work for N workers (docs/labeling.md "Sub-groups and shard sizes"):
// which models are loaded together (sub-groups of a preprocessing group) and how many probe
// images a shard of each holds. One rule for label::plan_work and `mll plan`, so that the planner
// simulates what a real run does. Pure logic: nothing here is collective or touches a device.
//
// The rule, from the ideal makespan T = (pure compute of every model on every image) / N:
//  - sub-groups: a group's models are cut (schedule::split_group) so that each sub-group fits
//    the cap min(memory budget, load cap), load cap = kLoadFraction x T x load bandwidth: a
//    worker's first load then costs at most kLoadFraction of its share of the work. A model
//    over the load cap (but within the memory budget) is a sub-group of its own; one over the
//    memory budget is an error. Footprints are schedule::model_memory (weights + one batch).
//  - shard sizes: a shard of sub-group s takes at most kShardFraction x T, i.e. its images
//    unit_s <= kShardFraction x (sum of every model's GFLOPs/image) x P / (N x gflops_s) (the
//    throughput cancels), rounded down to the batch and clamped to [min_unit, max_unit]. Within
//    one preprocessing group every unit is the group's smallest unit times a power of two and
//    shards start at multiples of their unit, so a coarse shard covers whole fine shards: the
//    crops the fine shards cached for the group (decode once) tile every coarser shard.
//
// What it assumes when run for real: the throughput, load bandwidth and precision of
// RuleOptions (defaults: 100 TFLOP/s per GPU, 2 GB/s, fp16 weights and activations), models'
// costs from their sidecars (`params`, `gflops_per_image`), and the run's rank count as N.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mll::schedule {

// One model as the planner and the rule see it.
struct MakespanModel {
  std::string id;
  std::string group_key;          // models with equal keys form one preprocessing group
  std::int64_t params = 0;        // parameters (both towers: what gets loaded)
  double gflops_per_image = 0.0;  // image tower, one image, 2 FLOPs per multiply-add
  int image_size = 224;           // input height and width (the batch's working set)
};

// Share of the ideal makespan a sub-group's load may take (the load cap). 2%: the sub-groups
// stay whole where loading is cheap (8 GPUs: no split), and at 512 GPUs the first loads cost
// about the 6% that the largest models force anyway (docs/benchmarks.md "mll plan").
inline constexpr double kLoadFraction = 0.02;
// Share of the ideal makespan one shard may take: the tail (workers idle while the last shards
// run) stays near this fraction. Halving it gained under half a point at 512 GPUs (0.901 to
// 0.905, with a 64-image minimum) for 1.5x the shards.
inline constexpr double kShardFraction = 0.02;

struct RuleOptions {
  double gpu_tflops = 100.0;     // achieved TFLOP/s of one GPU (MakespanOptions::gpu_tflops)
  double load_gbps = 2.0;        // GB/s at which a worker loads weights
  double bytes_per_param = 2.0;  // fp16 / bf16 weights
  std::int64_t memory = 0;       // bytes per worker for models (0: no limit)
  int batch = 32;                // images per forward pass: the shard grid
  double bytes_per_value = 2.0;  // activations (fp16)
  double load_fraction = kLoadFraction;
  double shard_fraction = kShardFraction;
  // One batch. Only the most expensive sub-groups at hundreds of GPUs reach it (EVA02-E-14 at
  // 512: 0.7 s a shard); every shard is one scheduler round trip and one commit.
  std::int64_t min_unit = 32;
  std::int64_t max_unit = 1024;  // a shard stays one commit of bounded size
  // > 0: every shard holds this many images and groups are split only by `memory` (the fixed
  // rule of `mll label --unit N`).
  std::int64_t fixed_unit = 0;
};

struct SubGroup {
  std::string key;  // the preprocessing group's key
  int part = 0;     // index among the group's sub-groups (0: the group's first model)
  std::vector<std::size_t> models;  // indices into the rule's `models`, ascending
  double gflops_per_image = 0.0;    // sum over its models
  std::int64_t weights = 0;         // bytes loaded
  std::int64_t footprint = 0;       // group_footprint: weights + the largest batch working set
  std::int64_t unit = 0;            // images per shard
};

struct WorkRule {
  double ideal_s = 0.0;             // T at the stated throughput
  std::int64_t load_cap = 0;        // bytes (0 with a fixed unit: no load cap)
  std::int64_t cap = 0;             // the sub-group cap applied (0: none)
  std::vector<SubGroup> subgroups;  // most expensive first (ties: zoo order), as labeling plans
};

// The rule for `models` (zoo order) on `workers` workers labeling `images` probe images. Throws
// UsageError for workers < 1, images < 1, non-positive rates or units, no models, and (from
// split_group) a model whose footprint exceeds `memory`, naming it.
WorkRule work_rule(const std::vector<MakespanModel>& models, int workers, std::int64_t images,
                   const RuleOptions& options);

}  // namespace mll::schedule
