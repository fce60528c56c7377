// The model files' SHA-256, remembered between runs.
//
// Every `mll label` records each model file's digest in the store (its identity: a changed file
// is a different model), and `mll select` checks a tower's file against it before it embeds
// class texts. Hashing is the first fixed cost of a run: a 100 GB zoo takes minutes on every
// start and every requeue. So `mll label` keeps `<store>.digests` beside the index: a header
// line, then one line per model file, "checksum sha256 size mtime_ns ctime_ns device inode path",
// the checksum (XXH3-64, 16 hex digits) covering the rest of the line. A file whose size,
// modification and change times (nanoseconds), device and inode all match its line is not
// hashed again; any other file is, and its line is replaced. The change time cannot be set by
// a user (`touch -r` and `rsync -t` restore the modification time only, and set the change
// time to now), so rewriting a file in place always shows.
//
// A digest is remembered with the file's state from before it was hashed, and only if the file
// is still in that state afterwards: a file rewritten while it was hashed is hashed again next
// time. The file is a cache and nothing more: a missing, unreadable or malformed file (or line,
// such as one with a flipped bit) only means hashing; it is written atomically (temporary file +
// rename) and a failure to write it is a warning. Not thread-safe: one thread uses an object.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace mll::zoo {

struct ModelSpec;

class ModelDigests {
 public:
  // What identifies a file's content without reading it.
  struct FileState {
    std::int64_t size = -1, mtime_ns = -1, ctime_ns = -1, device = -1, inode = -1;
    friend bool operator==(const FileState& a, const FileState& b) {
      return a.size == b.size && a.mtime_ns == b.mtime_ns && a.ctime_ns == b.ctime_ns &&
             a.device == b.device && a.inode == b.inode;
    }
  };

  // Reads `path` when it exists (`path` empty: remember nothing). Never throws.
  explicit ModelDigests(std::string path);

  // `file`'s state now, or nullopt when it cannot be stat'ed. Never throws.
  static std::optional<FileState> state_of(const std::string& file);

  // The remembered digest of `file` when its state is unchanged. Never throws.
  std::optional<std::string> lookup(const std::string& file) const;
  // Remembers `sha256` for `file`, hashed from its content in state `hashed` (state_of() taken
  // before reading it): only if the file is still in that state. Never throws.
  void remember(const std::string& file, const std::string& sha256, const FileState& hashed);
  // Writes the file when something changed; a failure is logged as a warning. Never throws.
  void save() const;

 private:
  struct Entry {
    std::string sha256;
    FileState state;
  };

  std::string path_;
  std::map<std::string, Entry> entries_;  // by absolute path
  bool changed_ = false;
};

// The SHA-256 of `file`: remembered in `digests` when the file is unchanged, else read and
// hashed (and remembered). Throws IoError when the file cannot be read.
std::string file_sha256(const std::string& file, ModelDigests& digests);

// Throws DataError naming `spec`'s file unless its SHA-256 is `labeled_sha256` (the store's
// record of the file the model was labeled from): a model run next to its labels (matching,
// reuse) must be the one labeled. `digests_path`: the remembered digests, which only spare the
// hash when they agree with `labeled_sha256` (anything else is decided by hashing the file); a
// file hashed and found to be the labeled one is remembered there (a failure to write it is a
// warning: a read-only store's folder only means hashing next time). Throws IoError when the
// file cannot be read.
void check_labeled_file(const ModelSpec& spec, const std::string& labeled_sha256,
                        const std::string& digests_path);

}  // namespace mll::zoo
