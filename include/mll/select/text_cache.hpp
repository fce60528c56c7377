// The class-text embedding cache (docs/selection.md, "The text cache").
//
// Matching embeds each class text with a text tower: for a ViT-B/32-sized model that is a model
// load (~1 s, ~600 MB) plus ~60 ms of CPU per text, and later tasks of a hub repeat the same
// class texts. So the vectors are remembered beside the store, one file per model:
// `<store>.text-cache/<model id>.textcache`. Each file is keyed by the model id, the model
// file's SHA-256 as the store's record has it and the tokenizer, so a model relabeled from
// another file (or fed another tokenizer) never gets vectors of the old one; within a file the
// key of a vector is the exact text. Vectors are the runner's float32 rows, bit for bit, so a
// selection made from the cache equals one made without it.
//
// Layout of a file: three ASCII lines, then the payload they describe:
//   MLL-TEXT-CACHE 1
//   sha256 <64 hex digits: SHA-256 of the payload>
//   size <payload bytes>
// payload (little-endian): model id, model sha256, tokenizer (each a u32 length + bytes), u32
// dim, u64 count, then per text its u32 length + bytes and dim float32 values.
//
// Crash model: the cache is not store data. A file is written under a temporary name, fsync'd
// and renamed, so it is either the old or the new version; its checksum is checked before a byte
// of the payload is parsed, and a damaged, truncated or foreign file is ignored with a warning
// (and replaced by the next save). A cache that cannot be read or written (a read-only store)
// only costs time, with a warning. Two selections saving one model's file at once: the last
// rename wins and the other's new texts are embedded again next time. Nothing here throws
// (errors become warnings in the log) or is collective; a TextCache is used from one thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mll::select {

// `<store>.text-cache`: where a store's text cache lives by default.
std::string default_text_cache_dir(const std::string& store_path);

// What a model's vectors depend on.
struct TextCacheKey {
  std::string model_id;
  std::string model_sha256;  // the store record's
  std::string tokenizer;     // kind, context length and vocabulary as the sidecar names them
};

class TextCache {
 public:
  // Reads `<dir>/<model_id>.textcache` when it exists and belongs to `key`; `dir` empty: a cache
  // that remembers nothing. Never throws.
  TextCache(std::string dir, TextCacheKey key);

  // The vector of `text` (dim() floats), or null. Never throws.
  const std::vector<float>* find(const std::string& text) const;
  // Remembers `row` for `text`. The first row sets dim(); a row of another width is ignored
  // with a warning. Never throws.
  void add(const std::string& text, std::vector<float> row);
  // Writes the file when texts were added. A failure is a warning. Never throws.
  void save() const;

  std::int64_t dim() const noexcept { return dim_; }
  std::size_t size() const noexcept { return rows_.size(); }
  std::string file() const;

  // The file's bytes for `key`, `dim` and `rows` (text -> dim floats); exposed for tests.
  static std::string encode(const TextCacheKey& key, std::int64_t dim,
                            const std::map<std::string, std::vector<float>>& rows);

 private:
  void load();

  std::string dir_;
  TextCacheKey key_;
  std::int64_t dim_ = -1;
  std::map<std::string, std::vector<float>> rows_;
  bool changed_ = false;
};

}  // namespace mll::select
