// Model sidecars and the zoo manifest (docs/models.md).
//
// A model is a TorchScript file plus a JSON sidecar describing how to feed it: image geometry and
// normalisation, tokenizer, logit scale, and the cost figures the scheduler plans with. A zoo
// manifest lists sidecars by id. Relative paths are resolved against the directory of the file
// that names them, so a zoo directory can be moved or copied as a whole. Nothing here is
// collective.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mll::zoo {

// The sidecar format version written by save_sidecar; load_sidecar refuses newer ones.
inline constexpr int kSidecarVersion = 1;

// Tokenizer kinds a sidecar may name; the tokenize module implements them.
inline constexpr const char* kTokenizerKinds[] = {"clip-bpe", "sentencepiece", "gpt2-bpe"};

struct TokenizerSpec {
  std::string kind = "clip-bpe";
  int context_length = 77;
  // Vocabulary / tokenizer model file as written in the sidecar (relative to its directory);
  // empty means the tokenizer's built-in default (CLIP's bpe_simple_vocab_16e6 for clip-bpe,
  // GPT-2's encoder.json for gpt2-bpe); sentencepiece requires one.
  std::string vocab;
  // gpt2-bpe only (JSON key "merges"): the merges file; empty means GPT-2's vocab.bpe, which
  // RoBERTa shares.
  std::string merges;
};

// What the exporter computed with the model's own framework (open_clip's preprocess, tokenizer and
// eager towers) for the inputs of an mll parity set (data/reference/<set>.json): L2-normalised
// rows in the set's order. mll recomputes them through its own pipeline before trusting the model
// (mll/feed/parity.hpp; docs/models.md, "The parity guard"). JSON key "reference".
struct ParityReference {
  std::string set;  // the parity set's name, e.g. "parity-1"
  std::vector<std::vector<float>> image_embeddings;
  std::vector<std::vector<float>> text_embeddings;
  std::string made_with;  // free text: framework and versions, for messages
};

struct ModelSpec {
  std::string id;
  // The TorchScript file as written in the sidecar: relative to the sidecar's directory unless
  // absolute. model_path() resolves it.
  std::string model_file;
  int image_size = 224;
  std::string resize_mode = "shortest";   // "shortest" | "squash"
  std::string crop = "center";            // "center"
  std::string interpolation = "bicubic";  // "bicubic" | "bilinear"
  std::array<float, 3> mean = {0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> stddev = {0.26862954f, 0.26130258f, 0.27577711f};  // JSON key "std"
  TokenizerSpec tokenizer;
  double logit_scale = 100.0;
  std::optional<double> imagenet_top1;  // in [0, 1]
  std::int64_t params = 0;              // parameter count of both towers
  // Forward cost of one image through the image tower, in GFLOPs counted as 2 x multiply-adds
  // (the definition of open_clip's model_profile.csv "image_gflops" column).
  double gflops_per_image = 0.0;
  std::optional<int> embed_dim;  // when present the runner checks the towers' output width
  std::optional<ParityReference> reference;

  // Directory the relative paths are resolved against (set by load_sidecar; may be empty).
  std::string base_dir;

  // model_file resolved against base_dir. Does not throw.
  std::string model_path() const;
  // tokenizer.vocab resolved against base_dir; empty when the sidecar names none. Does not throw.
  std::string vocab_path() const;
  // tokenizer.merges resolved likewise. Does not throw.
  std::string merges_path() const;
};

// Reads and validates a sidecar. Every problem is a DataError "<path>: field 'x': what is wrong"
// (missing field, wrong type, unknown tokenizer kind, sizes out of range, unknown modes);
// a missing file is a DataError, an unreadable one an IoError.
ModelSpec load_sidecar(const std::string& path);

// Same as load_sidecar for JSON text already in memory; `origin` names it in messages and
// `base_dir` becomes spec.base_dir. Throws DataError.
ModelSpec parse_sidecar(const std::string& json_text, const std::string& origin,
                        const std::string& base_dir);

// The sidecar JSON text for `spec` (pretty-printed, stable key order). Throws UsageError when the
// spec would not pass load_sidecar's validation, so that no invalid sidecar is ever written.
std::string sidecar_json(const ModelSpec& spec);

// Writes sidecar_json(spec) atomically (temp file, then rename). Throws UsageError (invalid spec),
// IoError (write failed).
void save_sidecar(const ModelSpec& spec, const std::string& path);

struct ZooEntry {
  std::string id;
  std::string sidecar;  // as written in the manifest: relative to its directory unless absolute
};

// The list of models of a zoo: {"models": [{"id": ..., "sidecar": ...}, ...]}. Ids are unique.
class ZooManifest {
 public:
  // An empty manifest that will live at `path` (relative sidecar paths refer to its directory).
  // Does not throw.
  explicit ZooManifest(std::string path = "zoo.json");

  // Reads a manifest. Throws DataError (missing file, bad JSON, missing fields, duplicate ids),
  // IoError.
  static ZooManifest load(const std::string& path);

  // Writes the manifest atomically to path(). Throws IoError.
  void save() const;

  // Adds an entry. Throws DataError when `id` is already listed or id/sidecar is empty.
  void add(const ZooEntry& entry);

  // Reads the sidecar at `sidecar_path` and adds it under its id, written relative to the
  // manifest's directory when it lies below it. Throws what load_sidecar throws, DataError for a
  // duplicate id. Returns the added entry.
  ZooEntry add_sidecar(const std::string& sidecar_path);

  // Removes the entry with `id`; returns false when there is none. Does not throw.
  bool remove(const std::string& id);

  const std::vector<ZooEntry>& entries() const noexcept { return entries_; }
  const std::string& path() const noexcept { return path_; }
  bool contains(const std::string& id) const noexcept;

  // The entry's sidecar path resolved against the manifest's directory. Does not throw.
  std::string sidecar_path(const ZooEntry& entry) const;

  // Loads the sidecar of `id`. Throws UsageError when the id is not listed, DataError when the
  // sidecar is invalid or declares another id than the manifest.
  ModelSpec load_spec(const std::string& id) const;

  // Loads every sidecar, in manifest order. Throws as load_spec.
  std::vector<ModelSpec> load_all() const;

 private:
  std::string path_;
  std::vector<ZooEntry> entries_;
};

}  // namespace mll::zoo
