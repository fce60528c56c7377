#include "mll/probe/probe_set.hpp"

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>

#include "mll/archive/image_ref.hpp"
#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/core/hash.hpp"
#include "mll/h5/h5.hpp"

namespace mll::probe {

std::vector<std::int32_t> ProbeSet::images_of(std::size_t v) const {
  MLL_CHECK(v + 1 < node_offsets.size(), "node ", v, " out of range");
  return {node_images.begin() + node_offsets[v], node_images.begin() + node_offsets[v + 1]};
}

std::string ProbeSet::path_of(std::size_t i) const {
  MLL_CHECK(i < image_paths.size(), "image ", i, " out of range");
  if (root.empty()) return image_paths[i];
  return (std::filesystem::path(root) / image_paths[i]).string();
}

std::string ProbeSet::content_hash() const {
  // The root directory is not hashed: moving the images elsewhere keeps the identity.
  Sha256 hash;
  hash.update_field("mll-probe-v1").update_field(graph_hash);
  hash.update_u64(static_cast<std::uint64_t>(per_node)).update_u64(seed);
  hash.update_u64(image_paths.size());
  for (std::size_t i = 0; i < image_paths.size(); ++i) {
    hash.update_field(image_paths[i]).update_u64(static_cast<std::uint64_t>(image_sizes[i]));
  }
  hash.update_u64(node_offsets.size());
  for (auto o : node_offsets) hash.update_u64(static_cast<std::uint64_t>(o));
  for (auto i : node_images) hash.update_u64(static_cast<std::uint64_t>(i));
  return hash.hex();
}

void ProbeSet::validate() const {
  if (!image_digests.empty() &&
      (image_digests.size() != image_paths.size() || image_mtimes.size() != image_paths.size())) {
    MLL_THROW(DataError, "probe set: ", image_paths.size(), " paths but ", image_digests.size(),
              " digests and ", image_mtimes.size(), " modification times");
  }
  if (image_sizes.size() != image_paths.size()) {
    MLL_THROW(DataError, "probe set: ", image_paths.size(), " paths but ", image_sizes.size(),
              " sizes");
  }
  if (node_offsets.empty() || node_offsets.front() != 0 ||
      node_offsets.back() != static_cast<std::int64_t>(node_images.size())) {
    MLL_THROW(DataError, "probe set: node offsets do not cover the membership table");
  }
  for (std::size_t v = 0; v + 1 < node_offsets.size(); ++v) {
    if (node_offsets[v + 1] < node_offsets[v]) {
      MLL_THROW(DataError, "probe set: node offsets decrease at node ", v);
    }
  }
  for (auto id : node_images) {
    if (id < 0 || static_cast<std::size_t>(id) >= image_paths.size()) {
      MLL_THROW(DataError, "probe set: image id ", id, " out of range (", image_paths.size(),
                " images)");
    }
  }
}

void write_probe(const ProbeSet& probe, const h5::Group& group) {
  probe.validate();
  group.set_attr("schema_version", kProbeSchemaVersion);
  group.set_attr("content_hash", probe.content_hash());
  group.set_attr("graph_hash", probe.graph_hash);
  group.set_attr("per_node", static_cast<std::int64_t>(probe.per_node));
  group.set_attr("seed", static_cast<std::int64_t>(probe.seed));
  group.set_attr("root", probe.root);
  group.write_strings("image_path", probe.image_paths);
  group.write("image_size", probe.image_sizes);
  if (!probe.image_digests.empty()) {
    group.write("image_digest", probe.image_digests);
    group.write("image_mtime", probe.image_mtimes);
  }
  group.write("node_offsets", probe.node_offsets);
  group.write("node_images", probe.node_images);
}

ProbeSet read_probe(const h5::Group& group) {
  const std::string where = group.file() + ":" + group.path();
  if (!group.has_attr("schema_version")) {
    MLL_THROW(DataError, where, ": not an mll probe set (no schema_version attribute)");
  }
  const auto schema = group.attr_int("schema_version");
  if (schema != kProbeSchemaVersion) {
    MLL_THROW(DataError, where, ": probe schema version ", schema, " is not supported (this mll ",
              "reads version ", kProbeSchemaVersion, ")");
  }
  ProbeSet probe;
  probe.root = group.attr_string("root");
  probe.graph_hash = group.attr_string("graph_hash");
  probe.per_node = static_cast<std::int32_t>(group.attr_int("per_node"));
  probe.seed = static_cast<std::uint64_t>(group.attr_int("seed"));
  probe.image_paths = group.read_strings("image_path");
  probe.image_sizes = group.read<std::int64_t>("image_size");
  if (group.has("image_digest")) {  // optional: probe sets before digests have none
    probe.image_digests = group.read<std::int64_t>("image_digest");
    probe.image_mtimes = group.read<std::int64_t>("image_mtime");
  }
  probe.node_offsets = group.read<std::int64_t>("node_offsets");
  probe.node_images = group.read<std::int32_t>("node_images");
  try {
    probe.validate();
  } catch (Error& e) {
    e.add_context(where);
    throw;
  }
  const std::string stored = group.attr_string("content_hash");
  if (stored != probe.content_hash()) {
    MLL_THROW(DataError, where, ": probe set content hash mismatch (the file was modified)");
  }
  return probe;
}

void record_fingerprints(ProbeSet& probe, int threads) {
  const std::size_t n = probe.image_count();
  if (probe.image_digests.size() != n) {  // none recorded yet
    probe.image_digests.assign(n, 0);
    probe.image_mtimes.assign(n, kNotRecorded);
  }
  std::vector<std::size_t> missing;
  for (std::size_t i = 0; i < n; ++i) {
    if (!has_fingerprint(probe, i)) missing.push_back(i);
  }
  std::atomic<std::size_t> next{0};
  std::mutex mutex;
  std::string error;
  const auto work = [&] {
    // One reader per thread: the members of a shard are read through one open descriptor.
    archive::ImageReader reader;
    for (std::size_t k = next++; k < missing.size(); k = next++) {
      const std::size_t i = missing[k];
      try {
        const std::string path = probe.path_of(i);
        const std::string bytes = reader.read(path);
        probe.image_digests[i] = sha256_prefix64(bytes.data(), bytes.size());
        probe.image_mtimes[i] = archive::stamp(path).mtime_ns;
      } catch (const Error& e) {
        std::lock_guard lock(mutex);
        if (error.empty()) error = e.what();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (!error.empty()) MLL_THROW(DataError, "recording probe image digests: ", error);
}

}  // namespace mll::probe
