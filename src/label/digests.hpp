// Private to the label module: the model files' SHA-256, remembered between runs.
//
// Every `mll label` records each model file's digest in the store (its identity: a changed file
// is a different model). Hashing is the first fixed cost of a run: a 100 GB zoo takes minutes on
// every start and every requeue. So the writer keeps `<store>.digests` beside the index: one
// line per model file, "sha256 size mtime_ns inode path". A file whose size, modification time
// (nanoseconds) and inode all match its line is not hashed again; any other file is, and its
// line is replaced. The trade-off: a file rewritten in place with the same size and a restored
// modification time (`touch -r`, `rsync -t` of different content) keeps its old digest; `rm`
// the digests file (or pass `--rehash`) to hash everything again.
//
// The file is a cache and nothing more: a missing, unreadable or malformed file (or line) only
// means hashing; it is written atomically (temporary file + rename) and a failure to write it
// is a warning. Not thread-safe: one writer thread uses it (plan_work).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace mll::label {

class ModelDigests {
 public:
  // Reads `path` when it exists (`path` empty: remember nothing). Never throws.
  explicit ModelDigests(std::string path);

  // The remembered digest of `file` when its size, mtime and inode are unchanged. Never throws.
  std::optional<std::string> lookup(const std::string& file) const;
  // Remembers `sha256` for `file` as it is now on disk. Never throws.
  void remember(const std::string& file, const std::string& sha256);
  // Writes the file when something changed; a failure is logged as a warning. Never throws.
  void save() const;

 private:
  struct Entry {
    std::string sha256;
    std::int64_t size = -1, mtime_ns = -1, inode = -1;
  };
  static std::optional<Entry> stat_of(const std::string& file);

  std::string path_;
  std::map<std::string, Entry> entries_;  // by absolute path
  bool changed_ = false;
};

}  // namespace mll::label
