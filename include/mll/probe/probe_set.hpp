// The probe set (method.md section 1): which images serve as probes for which graph node.
//
// Every image is stored once (an image id is its row in `image_paths`) and referenced by every
// node it serves. The image table is append-only: growing the probe set keeps old ids, so stored
// embeddings stay valid. Nothing here is collective.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mll::h5 {
class Group;
}

namespace mll::probe {

inline constexpr std::int64_t kNotRecorded = -1;

struct ProbeSet {
  std::string root;                       // directory the paths are relative to ("" = absolute)
  std::vector<std::string> image_paths;   // row = image id
  std::vector<std::int64_t> image_sizes;  // bytes, when the set was built
  // A digest of each file's bytes (sha256_prefix64, core/hash.hpp) and its
  // modification time (ns since the epoch) when the set was built: labeling refuses an image
  // whose bytes changed. Empty for probe sets built before they were recorded; an image whose
  // mtime is kNotRecorded has no digest yet (record_fingerprints fills it in).
  std::vector<std::int64_t> image_digests;
  std::vector<std::int64_t> image_mtimes;
  std::vector<std::int64_t> node_offsets;  // N+1 (CSR over the graph's nodes, graph order)
  std::vector<std::int32_t> node_images;   // image ids
  std::int32_t per_node = 75;
  std::uint64_t seed = 0;
  std::string graph_hash;  // content hash of the graph the node indices refer to

  std::size_t image_count() const noexcept { return image_paths.size(); }
  std::size_t node_count() const noexcept {
    return node_offsets.empty() ? 0 : node_offsets.size() - 1;
  }
  // Image ids of node v.
  std::vector<std::int32_t> images_of(std::size_t v) const;
  // The full path of image i (root joined with the stored path).
  std::string path_of(std::size_t i) const;

  // SHA-256 over root-relative paths, sizes, membership, per_node, seed and graph hash.
  std::string content_hash() const;

  // Throws DataError when the tables are inconsistent (offsets not monotone, ids out of range).
  void validate() const;
};

inline constexpr std::int64_t kProbeSchemaVersion = 1;

// True when image i's digest was recorded. Does not throw.
inline bool has_fingerprint(const ProbeSet& probe, std::size_t i) {
  return i < probe.image_mtimes.size() && probe.image_mtimes[i] != kNotRecorded;
}

// Records the digest and modification time of every image of `probe` that has none yet,
// reading the files on `threads` threads. Throws DataError naming an image that cannot be read.
void record_fingerprints(ProbeSet& probe, int threads);

// Writes the /probe group (docs/store-format.md). Throws IoError.
void write_probe(const ProbeSet& probe, const h5::Group& group);
// Reads and validates it (schema version and content hash checked). Throws DataError.
ProbeSet read_probe(const h5::Group& group);

}  // namespace mll::probe
