// Private to the store module: the seal that makes every file of a store self-verifying
// (docs/store-format.md, "Seals"). Each HDF5 file the store writes (index, part, model file)
// reserves a 512-byte HDF5 user block, which HDF5 itself ignores (h5py and h5dump read the file
// as usual); once the file is complete, the block receives the SHA-256 and length of every byte
// after it. A reader checks the seal before HDF5 parses a byte of the file: HDF5 can crash on
// corrupt metadata, and a flipped bit in data would otherwise be read as good. Files written
// before seals existed (schema version 1) start with the HDF5 signature at offset 0 and are
// read unverified; any other start is corruption.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mll::store {

inline constexpr std::size_t kSealBytes = 512;  // the HDF5 user block (a power of two >= 512)

enum class SealState { kSealed, kUnsealed };

// Writes the seal of `path`, an HDF5 file created with a kSealBytes user block and closed. Does
// not fsync (the atomic rename that follows does). Throws IoError.
void write_seal(const std::string& path);

// Checks `path` without parsing it as HDF5: kSealed when its seal holds, kUnsealed for a file of
// a store written before seals (the HDF5 signature at offset 0). Throws DataError naming the
// file and what is wrong (no seal, wrong length: truncated or grown, digest mismatch), IoError
// when it cannot be read.
SealState check_seal(const std::string& path);

// Identity of a file's current version (device, inode, size, modification time): files are
// never modified in place, so a checked seal stays valid while the identity is the same.
struct FileStamp {
  std::uint64_t device = 0, inode = 0, size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const FileStamp& o) const {
    return device == o.device && inode == o.inode && size == o.size && mtime_ns == o.mtime_ns;
  }
};
// Throws IoError when the file cannot be stat'ed.
FileStamp stamp_of(const std::string& path);

}  // namespace mll::store
