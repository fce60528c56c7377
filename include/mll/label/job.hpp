// Labeling models into a store (method.md section 2): caption embeddings T, probe image
// embeddings E, then the summary labels.
//
// The work is cut into shards: rows [begin, end) of captions or probe images for the models of
// one *group* (models sharing a preprocessing config: each probe image is decoded once per group
// and fed to every model of it, "decode once"). Three roles:
//   plan_work  registers the models and lists the missing shards, biggest groups first;
//   Executor   computes a shard (any process: one rank, one GPU), keeping its group loaded;
//   Committer  writes results into the store (the single writer) and finishes models.
// distributed::label() runs them on 1..N ranks.
//
// Batches lie on a fixed grid of row indices (multiples of the batch size), so every row is
// always computed in the same batch: results are bit-identical however the work was split
// (interrupted runs, any number of ranks), for a fixed batch size.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mll/core/signals.hpp"
#include "mll/image/preprocess.hpp"
#include "mll/schedule/memory.hpp"
#include "mll/store/store.hpp"
#include "mll/zoo/model_spec.hpp"
#include "mll/zoo/runner.hpp"

namespace mll::label {

struct LabelOptions {
  zoo::RunOptions run;
  int batch = 32;                   // images per forward pass (the grid step)
  int text_batch = 64;              // captions per forward pass
  std::int64_t unit_images = 1024;  // rows per shard and commit (rounded up to the grid)
  std::int64_t unit_captions = 4096;
  int decode_threads = 2;  // background decode + preprocess threads
  // Model threads (zoo::set_threads) for a shard that decodes images, and for one that has
  // nothing to decode (captions; crops all read from the image cache): on the CPU the model then
  // takes the cores its decode threads would have used. 0: the process's count is left alone.
  int model_threads = 0;
  int model_threads_without_decoding = 0;
  int prefetch_batches = 4;  // decoded batches kept ready ahead of the model
  // uint8 crops decoded beyond those batches while the model is busy elsewhere (loading):
  // 256 MiB is ~1,700 crops at 224 px, about a second of decoding on 2 cores
  std::int64_t prefetch_ahead_bytes = std::int64_t{256} << 20;
  std::int64_t label_block = 1024;  // probe images per block of the summary labels' prediction
  std::string image_cache;          // if set, a folder of preprocessed crops per shard (CropCache)
  // Bytes of device memory the models of one rank may take (schedule/memory.hpp); a group that
  // needs more is split into sub-groups that fit. 0: no limit; negative: distributed::label()
  // works out the default (most of the GPU's free memory, or the rank's share of the host's).
  std::int64_t memory = -1;
  // Where the sub-groups of a split group keep the crops they share, so that each probe image is
  // decoded once per preprocessing config (image_cache when set; label() defaults it to
  // `<store>.crops`).
  std::string shared_crops;
  // Cut the work by cost for `workers` ranks (schedule::work_rule, `mll label --unit auto` on
  // CUDA): sub-groups whose load is a small share of the ideal makespan, shards sized so that
  // none is longer than a small share of it. Off: shards of unit_images, split by memory only.
  bool cost_rule = false;
  int workers = 1;
  bool fast_decode = false;  // JPEG DCT-domain downscaling for large photos (not exact)
  bool fail_fast = false;    // stop at the first failing model instead of recording it
  // The parity guard's threshold (mll/feed/parity.hpp) for models whose sidecar has reference
  // embeddings; negative: feed::default_min_cosine(run.precision); 0: the guard is off.
  double parity_min_cosine = -1.0;
  bool rehash = false;  // hash every model file, ignoring <store>.digests
  // Move finished model files of another graph or probe set found beside the index to
  // `<store>.quarantine/` instead of refusing the store (store::Store::ForeignFiles).
  bool quarantine_foreign = false;
  bool progress = true;
};

struct LabelReport {
  std::vector<std::string> labeled;  // finished in this run
  std::vector<std::string> skipped;  // already done
  std::vector<std::string> failed;   // recorded as failed (with their messages in the store)
  std::int64_t images_decoded = 0;   // decode work done in this run (all processes)
  std::int64_t image_rows = 0;       // image embeddings computed (over all models)
  double forward_seconds = 0.0;      // time inside the models' forward passes (all processes)
};

// The models a rank holds at once. Models sharing a preprocessing config form one group, or, when
// they do not fit the memory budget together, `parts` sub-groups of the same key: the first to
// reach a shard decodes its images into the shared crop cache and the others read them.
struct Group {
  std::string key;  // preprocessing identity (preprocess_key)
  image::PreprocessSpec preprocess;
  std::vector<zoo::ModelSpec> models;  // zoo order
  double gflops_per_image = 0.0;       // sum over the group's models (scheduling cost)
  int part = 0;                        // this sub-group's index among the key's `parts`
  int parts = 1;
  std::int64_t memory = 0;  // estimated bytes when loaded (schedule::group_footprint)
  std::int64_t unit = 0;    // probe images per shard (0: LabelOptions::unit_images)
};

struct Shard {
  int group = 0;
  store::UnitKind kind = store::UnitKind::kImage;
  std::int64_t begin = 0, end = 0;
  std::vector<std::string> models;  // models of the group that miss rows in [begin, end)
  // For each of `models`, the ranges within [begin, end) it misses (usually all of it).
  std::vector<std::vector<std::pair<std::int64_t, std::int64_t>>> needed;
};

struct WorkPlan {
  std::vector<Group> groups;         // most expensive first
  std::vector<Shard> shards;         // group order, images before text, ascending rows
  std::vector<std::string> skipped;  // already done
  std::vector<std::string> failed;   // unreadable model files (nothing could be registered)
};

// Rows computed for one model: [begin, end) of one kind (a shard may yield several runs).
struct ModelRows {
  std::string model;
  store::UnitKind kind = store::UnitKind::kImage;
  std::int64_t begin = 0, end = 0;
  std::int64_t dim = 0;
  std::vector<float> rows;  // (end - begin) x dim, L2-normalised
};

struct ShardResult {
  std::vector<ModelRows> rows;
  std::vector<std::pair<std::string, std::string>> failures;  // model id, message
  // Model id, zoo::ParityReport::json(): the parity guard passed when the model was loaded.
  std::vector<std::pair<std::string, std::string>> parity;
  bool stopped = false;  // a stop signal cut the shard short (rows are partial)
  // Why the shard stopped at a probe image that cannot be used (unreadable, or changed since
  // the probe set was built); its rows are dropped, the other shards go on.
  std::string unreadable;
  std::int64_t images_decoded = 0;
  double forward_seconds = 0.0;  // time spent inside encode_images / encode_text
};

// The estimated device memory of `spec` while labeling with `options` (weights in the run's
// precision, one batch of images). Does not throw.
schedule::ModelMemory model_memory(const zoo::ModelSpec& spec, const LabelOptions& options);

// The provenance record of a model (file hash, sidecar). Throws DataError when the model file
// cannot be read.
store::ModelRecord model_record(const zoo::ModelSpec& spec);

// Registers every model of `specs` in `store` (opened for writing), skips the finished ones, splits
// groups that do not fit options.memory, and cuts what is missing into shards. Throws UsageError
// for bad options or a model that alone exceeds options.memory (before anything is registered),
// DataError (or records the model as failed) for unreadable model files.
WorkPlan plan_work(store::Store& store, const std::vector<zoo::ModelSpec>& specs,
                   const LabelOptions& options);

// Every probe image's path in row order (the Executor's `image_paths`).
std::vector<std::string> probe_image_paths(const store::Store& store);

// Computes shards. Holds the models of one group at a time (loaded on first use, kept while the
// shards given to it are of the same group). Reads captions and probe image paths only.
class Executor {
 public:
  // `image_sizes` / `image_digests` (one per path, or empty: unchecked) are what the probe
  // images were when the probe set was built (probe::ProbeSet); a file that changed fails its
  // shard.
  Executor(std::vector<Group> groups, std::vector<std::string> captions,
           std::vector<std::string> image_paths, LabelOptions options,
           std::vector<std::int64_t> image_sizes = {},
           std::vector<std::int64_t> image_digests = {});
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Runs `shard` for the models it lists. A model that cannot be loaded or returns bad outputs
  // becomes a failure in the result (the others go on). Checks `stop` between batches and
  // returns partial rows with `stopped` set. A probe image that cannot be decoded (or changed)
  // ends the shard with `unreadable` set and no rows. Throws UsageError for options the device
  // cannot honour, IoError.
  ShardResult run(const Shard& shard, const StopFlag& stop);

  int loaded_group() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The single writer: commits results, records failures, and finishes models whose rows are
// complete (summary labels computed from the stored embeddings).
class Committer {
 public:
  Committer(store::Store& store, const WorkPlan& plan, const LabelOptions& options);

  // Commits every run of rows (one store unit each) and records failures. With fail_fast, a
  // failure throws DataError. Throws IoError when the store cannot be written.
  void commit(const ShardResult& result);
  // Finishes every model of the plan that is complete and not failed (idempotent), computing its
  // summary labels in this process.
  void finish_complete();
  // The models of the plan whose rows are all stored, not failed and not finished by this
  // committer: what finish_complete() would finish. Throws what the store throws.
  std::vector<std::string> complete_models() const;
  // Finishes `model` with summary labels computed elsewhere (label::labels_from_predictions).
  // Throws IoError when the store cannot be written.
  void finish(const std::string& model, const store::ModelLabels& labels);
  bool failed(const std::string& model) const;
  const LabelReport& report() const noexcept { return report_; }

 private:
  store::Store& store_;
  const WorkPlan& plan_;
  LabelOptions options_;
  LabelReport report_;
  std::string config_json_;
  std::string started_utc_;
  std::map<std::string, std::string> parity_;  // model id -> the parity report of this run
};

}  // namespace mll::label
