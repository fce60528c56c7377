// The crash-safe HDF5 label store (docs/store-format.md, "The label store").
//
// An index file `store.h5` (graph, probe set, caption table, model registry, external links to
// finished models) and a directory `store.h5.d/` of model files and part files. No file is ever
// modified in place: each is written under a temporary name, fsync'd and renamed, so a writer
// killed at any instant leaves a store that opens, and a writer open repairs what the kill left
// behind. A unit of work is done exactly when its part file exists.
//
// Single writer: a write open takes an exclusive lock on `store.h5.lock` (released by the
// destructor, or by the OS when the process dies); any number of readers may open the store at the
// same time. Nothing here is collective; a Store is used from one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mll/core/error.hpp"
#include "mll/core/matrix.hpp"
#include "mll/graph/graph.hpp"
#include "mll/probe/probe_set.hpp"

namespace mll::store {

// Schema version of the label store (index and model files); see the compatibility rule in
// docs/store-format.md.
inline constexpr std::int64_t kStoreSchemaVersion = 2;
// Version 1 (no seals) is still read; a writer open rewrites its index as version 2.
inline constexpr std::int64_t kOldestReadableSchemaVersion = 1;

// A second writer was refused: another process holds the store's lock. Exit code 64.
class LockedError : public UsageError {
 public:
  using UsageError::UsageError;
};

enum class ModelStatus { kPending, kDone, kFailed };
// "pending", "done", "failed". parse_status throws DataError for anything else.
std::string to_string(ModelStatus status);
ModelStatus parse_status(const std::string& text);

// One model's entry in the index registry.
struct ModelRecord {
  std::string id;  // mll/core/model_id.hpp; files on disk are named by model_file_stem(id)
  ModelStatus status = ModelStatus::kPending;
  std::string message;  // why it failed (failed models only)
  std::string model_sha256;
  std::string sidecar_json;
  std::string registered_utc;
  // When the model was last finished; non-empty exactly when store.h5.d/<id>.h5 exists (after
  // the store grows, a finished model is pending again and its file covers the old rows).
  std::string finished_utc;
};

enum class UnitKind { kText, kImage };
std::string to_string(UnitKind kind);  // "text", "image"

// A range [begin, end) of caption ids (text) or probe image ids (image).
struct Unit {
  UnitKind kind = UnitKind::kImage;
  std::int64_t begin = 0;
  std::int64_t end = 0;
  std::int64_t size() const noexcept { return end - begin; }
  bool operator==(const Unit& other) const noexcept {
    return kind == other.kind && begin == other.begin && end == other.end;
  }
};

// Summary labels of one model, computed by the labeling module (method.md section 2).
struct ModelLabels {
  std::vector<float> node_top1;              // N
  std::vector<std::int32_t> node_confusion;  // N x 3, row-major, -1 = none
  std::vector<float> subtree_top1;           // N
};

// Provenance given when a model is finished.
struct FinishInfo {
  double logit_scale = 100.0;
  std::string config_json;  // the labeling configuration (batch size, device, ...)
  std::string started_utc;  // when labeling of this model started ("" = registration time)
  // The parity guard's measurement (zoo::ParityReport::json()); "" keeps the previous finish's,
  // if any (a model finished without being loaded in this run).
  std::string parity_json;
};

// The attributes of a finished model file.
struct ModelInfo {
  std::string id;
  std::int64_t dim = 0;
  double logit_scale = 0.0;
  std::int64_t text_rows = 0;   // rows of text_embeddings
  std::int64_t image_rows = 0;  // rows of image_embeddings
  std::string model_sha256, sidecar_json, config_json, mll_version;
  std::string started_utc, finished_utc, graph_hash, probe_hash;
  std::string parity_json;  // "" when the sidecar had no reference (attribute absent)
};

// How much of a model is labeled (finished rows plus part files).
struct Progress {
  std::int64_t text_done = 0, text_total = 0;
  std::int64_t images_done = 0, images_total = 0;
};

// Result of Store::verify(): one line per violated invariant, naming the file or model.
struct VerifyReport {
  std::vector<std::string> violations;
  // Harmless findings: temporary files of an interrupted write. They are never renamed into
  // place, so they cannot be mistaken for data, and the next writer removes them.
  std::vector<std::string> notes;
  bool ok() const noexcept { return violations.empty(); }
};

// What a writer open does with a finished model file beside the index that the index does not
// know and that was labeled for another graph or probe set (an index restored from another
// store, or a backup of another probe set): refuse (DataError naming both hashes; nothing is
// touched), or move such files to `<index>.quarantine/` and go on. Never delete them.
enum class ForeignFiles { kRefuse, kQuarantine };
struct OpenOptions {
  ForeignFiles foreign_files = ForeignFiles::kRefuse;
};

class Store {
 public:
  enum class Mode { kRead, kWrite };

  using ForeignFiles = store::ForeignFiles;
  using OpenOptions = store::OpenOptions;

  // Creates a store at `path` (index via temp + rename, and `<path>.d/`) and returns it opened
  // for writing. Throws UsageError when the store exists and `force` is false (with `force` the
  // old index, model files and parts are replaced), DataError when the probe set does not belong
  // to the graph, LockedError when another writer holds the store, IoError on write failures.
  static Store create(const std::string& path, const graph::Graph& graph,
                      const probe::ProbeSet& probe, bool force);

  // Opens an existing store. Checks the schema version and the graph and probe hashes. kWrite
  // takes the writer lock and repairs what an interrupted writer left (temporary files, a
  // finished model file not yet recorded, parts of finished models, files of removed models:
  // those with a tombstone). A finished file the index does not know is adopted when it fits
  // the index, else handled by options.foreign_files; other unknown model files and part folders
  // are moved to `<path>.quarantine/` with a warning. Nothing is deleted on a guess. kRead never
  // modifies anything. Throws DataError (missing store, not a label store, other schema version,
  // hash mismatch, foreign files refused), LockedError, IoError.
  static Store open(const std::string& path, Mode mode, const OpenOptions& options = {});

  ~Store();  // releases the lock; never throws
  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Accessors; none throws.
  const std::string& path() const noexcept;
  Mode mode() const noexcept;
  const graph::Graph& graph() const noexcept;
  const probe::ProbeSet& probe() const noexcept;
  // The caption table (C entries, append-only) and each graph node's caption id.
  const std::vector<std::string>& captions() const noexcept;
  const std::vector<std::int64_t>& node_caption() const noexcept;
  // Registered models in id order.
  const std::vector<ModelRecord>& models() const noexcept;
  std::optional<ModelRecord> find_model(const std::string& id) const;

  // --- Writer API: each call is durable when it returns. All throw UsageError in a read-only
  // store or for an unknown or invalid model id, IoError when writing fails.

  // Registers a model as pending. Registering it again with the same model_sha256 keeps its
  // progress (a failed model becomes pending again: registering again means trying again);
  // another sha256 throws DataError.
  void register_model(const ModelRecord& record);

  // The ranges of captions and probe images not yet covered for `id` (by its finished file or
  // part files), cut into pieces of at most the unit sizes; text first, then images, ascending.
  // Any unit size gives the same rows. Works on read-only stores too. Throws UsageError.
  std::vector<Unit> missing_units(const std::string& id, std::int64_t image_unit_size,
                                  std::int64_t text_unit_size) const;
  Progress progress(const std::string& id) const;  // throws UsageError for an unknown id

  // Stores `unit.size()` rows of `dim` floats (L2-normalised embeddings) as float16 in a part
  // file. Throws UsageError when the unit is out of range or overlaps covered rows, DataError
  // when `dim` differs from the model's earlier rows or a row is not finite or not unit-norm.
  void commit_unit(const std::string& id, const Unit& unit, const float* rows, std::int64_t dim);

  // Consolidates the finished rows and parts into store.h5.d/<id>.h5 with the labels and
  // provenance, records the model as done, then deletes its parts. Memory does not grow with P.
  // Throws InternalError when coverage is incomplete or the labels have the wrong sizes.
  void finish_model(const std::string& id, const ModelLabels& labels, const FinishInfo& info);

  // Records the model as failed with `message`; parts stay for a later retry. Throws UsageError
  // for a done model.
  void fail_model(const std::string& id, const std::string& message);

  // Removes the record and link (index rewritten first), then the model's files.
  void remove_model(const std::string& id);

  // Replaces the graph and probe set by grown ones. The new probe set must extend the old one
  // (old images a prefix, same per_node and seed) and every old node must remain; the caption
  // table grows append-only. Finished models stay linked and become pending: missing_units then
  // returns only the new rows. Throws DataError when the new tables do not extend the old.
  void grow(const graph::Graph& graph, const probe::ProbeSet& probe);

  // --- Reader API. All throw UsageError for an unknown model id, DataError when the rows are
  // not stored (yet) or a file is damaged, IoError when reading fails.

  // All C caption rows (from the finished file and parts).
  Matrix read_text_embeddings(const std::string& id) const;
  // Probe image rows [begin, end).
  Matrix read_image_embeddings(const std::string& id, std::int64_t begin, std::int64_t end) const;
  // Only the rows `ids` (strictly ascending), row i of the result holding probe image ids[i]:
  // what selection needs (a task's images, not the whole table). Gaps of a few rows are read
  // through, since one larger read is cheaper than many small ones; only the asked rows are
  // converted to float. Also throws UsageError when `ids` is not strictly ascending in range.
  Matrix read_image_rows(const std::string& id, const std::vector<std::int64_t>& ids) const;
  // The same for caption rows.
  Matrix read_text_rows(const std::string& id, const std::vector<std::int64_t>& ids) const;
  // Checks the seals of the files holding the rows of `ids` (model files and parts) now, several
  // files at once, instead of one by one as each is first opened: for a reader about to read
  // many models. Throws UsageError for an unknown id, DataError naming a corrupt file, IoError.
  void check_files(const std::vector<std::string>& ids) const;
  // The summary labels of the last finish (their graph is model_info(id).graph_hash).
  ModelLabels read_labels(const std::string& id) const;
  ModelInfo model_info(const std::string& id) const;

  // Checks every invariant of docs/store-format.md against the files on disk (re-reading the
  // index). Meant to run while no writer is active (in-flight temporary files count as stray).
  // Never throws for a damaged store: problems become violations. Throws IoError only when the
  // directory cannot be listed.
  VerifyReport verify() const;

  // The implementation, opaque here (it holds HDF5 state); public only so that the store's own
  // translation units can name it.
  struct Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mll::store
