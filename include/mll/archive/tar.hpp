// Uncompressed tar archives (webdataset shards, docs/probe.md "Webdataset shards"), read and
// written through libarchive, the only code that includes archive.h.
//
// Layout: a member is named by its archive and the byte offset of its first header block (a pax
// or GNU long-name header counts as part of the member), so that one member can be read without
// reading the ones before it: a reader starts libarchive at that offset. Compressed archives
// (.tar.gz) are refused: their offsets are not positions in the file.
// Crash model: reading never changes a file; TarWriter writes under a temporary name and renames
// it when complete, so a kill never leaves a torn archive under the real name.
// Throws: DataError naming the archive (and member, and byte offset) for a missing, corrupt,
// truncated or compressed archive or a member that is not where it was recorded; IoError when a
// read or write fails. Nothing here is collective; objects are for one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mll::archive {

// A regular-file member of an archive.
struct Member {
  std::string name;         // as stored in the archive ('/' separators)
  std::int64_t offset = 0;  // byte offset of the member's first header block
  std::int64_t size = 0;    // bytes of data
  std::string bytes;        // the data, only when list_members was asked for it
};

// Lists the regular-file members of `path` in archive order (directories, links and other
// entries are skipped); the data of a member is read (into Member::bytes) when
// `want_bytes(name)` is true, and skipped otherwise. One sequential pass over the file.
// Throws DataError / IoError (header comment).
std::vector<Member> list_members(const std::string& path,
                                 const std::function<bool(const std::string&)>& want_bytes = {});

// Reads members of one archive by offset. Keeps the file open; members asked for in offset order
// are read strictly forward through the file.
class TarReader {
 public:
  // Throws DataError when `path` does not exist or is not a regular file.
  explicit TarReader(std::string path);
  ~TarReader();
  TarReader(TarReader&&) noexcept;
  TarReader& operator=(TarReader&&) noexcept;
  TarReader(const TarReader&) = delete;
  TarReader& operator=(const TarReader&) = delete;

  const std::string& path() const noexcept;

  // The data of the member named `name` whose headers start at `offset`. Throws DataError when
  // no such member starts there (the archive was rewritten since the offset was recorded) or the
  // archive is corrupt or truncated there; IoError when reading fails.
  std::string read(std::int64_t offset, const std::string& name);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes an uncompressed tar (POSIX pax format, plain ustar headers where they suffice, as GNU tar
// and Python's tarfile write) under `path`. Members are written in the order added.
class TarWriter {
 public:
  // Throws UsageError when `path` cannot be created (fs::check_output_path with force).
  explicit TarWriter(std::string path);
  // Discards the temporary file unless finish() completed.
  ~TarWriter();
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  // Adds a regular file member. Throws IoError.
  void add(const std::string& name, std::string_view bytes);
  // Closes the archive and renames it into place. Throws IoError.
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mll::archive
