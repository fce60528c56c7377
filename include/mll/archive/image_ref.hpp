// Image references: where the bytes of one image are, as one string that every image path in mll
// can hold (probe set rows, task image lists, error messages).
//
// Layout: a plain file path, or a member of a tar archive written `ARCHIVE.tar:OFFSET:MEMBER`,
// e.g. `shards/000003.tar:000000001536:n01440764/n01440764_10026.jpg`. OFFSET is the member's
// header offset in decimal, zero-padded to 12 digits so that sorting references byte-wise sorts
// the members of one archive in archive order (a probe set numbers its images in path order, so
// labeling then reads each shard front to back). A reference is recognised by the `.tar:` +
// digits + `:` after the archive's name; no real file path contains that.
// Crash model: nothing here writes.
// Throws: DataError naming the reference for a missing file or member, a corrupt archive, or a
// member that moved; IoError when reading fails. Nothing here is collective.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace mll::archive {

class TarReader;

struct MemberRef {
  std::string archive;  // the archive's path (as written in the reference)
  std::int64_t offset = 0;
  std::string member;
};

// `ARCHIVE:OFFSET:MEMBER` with the offset padded. Does not throw.
std::string member_ref(const std::string& archive, std::int64_t offset, const std::string& member);

// The parts of a member reference, or nullopt for a plain file path. Does not throw.
std::optional<MemberRef> parse_member_ref(const std::string& ref);

// The bytes of the image `ref` names: the file, or the archive member. Opens and closes the
// archive each time; ImageReader keeps it open. Throws DataError, IoError.
std::string read_image_bytes(const std::string& ref);

// What a cache fingerprint records of the image's file: its size and modification time, or the
// archive's for a member (rewriting a shard invalidates every member's cached crop).
struct FileStamp {
  std::int64_t size = 0;
  std::int64_t mtime_ns = 0;
};
// Throws DataError naming `ref` when its file cannot be stat'ed.
FileStamp stamp(const std::string& ref);

// Reads image bytes for one thread, keeping the last archive open, so that the members of one
// shard are read through one descriptor in the order they are asked for (docs/probe.md,
// "Sequential reading").
class ImageReader {
 public:
  ImageReader();
  ~ImageReader();
  ImageReader(const ImageReader&) = delete;
  ImageReader& operator=(const ImageReader&) = delete;

  // As read_image_bytes. Throws DataError, IoError.
  std::string read(const std::string& ref);

 private:
  std::unique_ptr<TarReader> open_;
};

}  // namespace mll::archive
