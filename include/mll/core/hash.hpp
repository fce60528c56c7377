// SHA-256 content hashes (graph, probe set, model files) and a fast checksum for damage checks.
//
// Backed by OpenSSL's libcrypto and libxxhash, which stay private to the core module. Not
// collective.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace mll {

// Incremental SHA-256. Feed bytes with update(); hex() finishes and returns 64 lowercase hex
// digits. Values are fed with an explicit framing (length prefixes) by the callers' canonical
// writers so that ("ab","c") and ("a","bc") hash differently.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  Sha256& update(const void* data, std::size_t size);
  Sha256& update(std::string_view text) { return update(text.data(), text.size()); }
  // Length-prefixed string: unambiguous when several strings are hashed in a row.
  Sha256& update_field(std::string_view text);
  Sha256& update_u64(std::uint64_t value);

  // Finishes the hash. Throws InternalError when called twice.
  std::string hex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The first 8 bytes of the SHA-256 of `size` bytes, as a signed 64-bit integer (HDF5-friendly):
// the cheap digest recorded for every probe image. Does not throw.
std::int64_t sha256_prefix64(const void* data, std::size_t size);

// The XXH3 64-bit hash of `size` bytes: a checksum that finds damaged data (a bad disk, a torn
// write), not a content identity; 10x faster than SHA-256 (docs/benchmarks.md, "Nothing to
// decode ..."), which matters where every byte read is checked (the image cache's crops).
// Does not throw.
std::uint64_t checksum64(const void* data, std::size_t size) noexcept;

// SHA-256 of a whole file, read in chunks. Throws IoError when the file cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace mll
