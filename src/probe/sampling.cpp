#include "mll/probe/sampling.hpp"

#include <algorithm>
#include <limits>
#include <unordered_map>
#include <utility>

#include "mll/core/error.hpp"
#include "mll/core/log.hpp"

namespace mll::probe {
namespace {

constexpr std::uint64_t kGolden = 0x9e3779b97f4a7c15ULL;

std::uint64_t mix64(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t fnv1a64(const std::string& text) noexcept {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

// Forward Fisher-Yates over the first `count` positions: afterwards values[0, count) is a
// uniformly random ordered sample of the whole vector.
void shuffle_prefix(std::vector<std::int32_t>& values, std::size_t count, Rng& rng) {
  const std::size_t n = values.size();
  for (std::size_t i = 0; i < count && i + 1 < n; ++i) {
    const std::size_t j = i + static_cast<std::size_t>(rng.below(n - i));
    std::swap(values[i], values[j]);
  }
}

// Every distinct image file of a source, sorted by path (a file listed under several wnids is
// one entry), and each graph node's own images as indices into that table. Indices are only
// used within one sampling run; sorting by index is sorting by path, which is what makes the
// sampler independent of how many other images exist.
struct ImageTable {
  std::vector<ImageFile> files;
  std::vector<std::vector<std::int32_t>> own;  // per graph node, ascending

  std::int32_t find(const std::string& path) const {
    const auto it = std::lower_bound(
        files.begin(), files.end(), path,
        [](const ImageFile& file, const std::string& key) { return file.path < key; });
    if (it == files.end() || it->path != path) return -1;
    return static_cast<std::int32_t>(it - files.begin());
  }
};

ImageTable index_source(const graph::Graph& graph, const ImageSource& source) {
  ImageTable table;
  for (const auto& [wnid, images] : source.by_wnid) {
    if (graph.index_of(wnid) < 0) {
      MLL_THROW(DataError, source.description, ": has images of ", wnid, " (", images.where,
                ") but ", wnid, " is not a node of the graph; build the graph from the same ",
                "tree or manifest, or add the wnid to its seeds");
    }
    table.files.insert(table.files.end(), images.files.begin(), images.files.end());
  }
  std::sort(table.files.begin(), table.files.end(), [](const ImageFile& a, const ImageFile& b) {
    return a.path < b.path || (a.path == b.path && a.size < b.size);
  });
  table.files.erase(std::unique(table.files.begin(), table.files.end()), table.files.end());
  for (std::size_t i = 1; i < table.files.size(); ++i) {
    if (table.files[i].path == table.files[i - 1].path) {
      MLL_THROW(DataError, source.description, ": image '", table.files[i].path,
                "' is listed with two different sizes");
    }
  }
  if (table.files.size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
    MLL_THROW(DataError, source.description, ": too many images (", table.files.size(), ")");
  }

  table.own.resize(graph.size());
  for (const auto& [wnid, images] : source.by_wnid) {
    auto& own = table.own[static_cast<std::size_t>(graph.index_of(wnid))];
    for (const auto& file : images.files) own.push_back(table.find(file.path));
    std::sort(own.begin(), own.end());
  }
  return table;
}

void warn_seeds_without_images(const graph::Graph& graph, const ImageTable& table,
                               const ImageSource& source) {
  std::size_t count = 0;
  std::string examples;
  for (std::size_t v = 0; v < graph.size(); ++v) {
    if (!graph.node(v).seed || !table.own[v].empty()) continue;
    if (++count <= 5) {
      examples += cat(count > 1 ? ", " : "", graph.node(v).wnid, " (", graph.node(v).name, ")");
    }
  }
  if (count == 0) return;
  log::warn(source.description, ": ", count, " seed node", count > 1 ? "s have" : " has",
            " no images of its own: ", examples, count > 5 ? ", ..." : "",
            "; a node with no images below it gets an empty probe list");
}

// Each node's probe images (ascending table indices), computed children first. A node's list
// depends only on its own images, its children's lists and its own random stream, hence only
// on its subtree.
std::vector<std::vector<std::int32_t>> sample_lists(const graph::Graph& graph,
                                                    const ImageTable& table,
                                                    const ProbeOptions& options) {
  const auto per_node = static_cast<std::size_t>(options.per_node);
  std::vector<std::vector<std::int32_t>> lists(graph.size());
  std::vector<char> taken(table.files.size(), 0);
  const auto& order = graph.topological_order();
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    const auto v = static_cast<std::size_t>(*it);
    Rng rng(node_stream(options.seed, graph.node(v).wnid));

    // The node's own images: a random sample of up to per_node.
    std::vector<std::int32_t> own = table.own[v];
    const std::size_t keep = std::min(per_node, own.size());
    shuffle_prefix(own, keep, rng);
    own.resize(keep);
    std::sort(own.begin(), own.end());

    // Pools to draw from: the own sample counts as one more child. Canonical order first (own,
    // then children by wnid), then a seeded visiting order.
    std::vector<std::vector<std::int32_t>> pools;
    if (!own.empty()) pools.push_back(std::move(own));
    std::vector<std::int32_t> children = graph.children(v);
    std::sort(children.begin(), children.end());  // graph order is wnid order
    for (const auto c : children) {
      if (!lists[static_cast<std::size_t>(c)].empty()) {
        pools.push_back(lists[static_cast<std::size_t>(c)]);
      }
    }
    if (pools.size() == 1 && children.empty()) {  // a leaf: its sample is its list
      lists[v] = std::move(pools.front());
      continue;
    }
    std::vector<std::int32_t> visit(pools.size());
    for (std::size_t p = 0; p < visit.size(); ++p) visit[p] = static_cast<std::int32_t>(p);
    shuffle_prefix(visit, visit.size(), rng);
    for (const auto p : visit) {
      auto& pool = pools[static_cast<std::size_t>(p)];
      shuffle_prefix(pool, pool.size(), rng);
    }

    // Round-robin: each pool in turn gives its next image not taken yet (a DAG can bring one
    // image through two children); an exhausted pool drops out and the others continue.
    std::vector<std::size_t> cursor(pools.size(), 0);
    std::vector<std::int32_t> chosen;
    bool progress = true;
    while (progress && chosen.size() < per_node) {
      progress = false;
      for (const auto p : visit) {
        if (chosen.size() == per_node) break;
        const auto& pool = pools[static_cast<std::size_t>(p)];
        auto& at = cursor[static_cast<std::size_t>(p)];
        while (at < pool.size() && taken[static_cast<std::size_t>(pool[at])]) ++at;
        if (at == pool.size()) continue;
        taken[static_cast<std::size_t>(pool[at])] = 1;
        chosen.push_back(pool[at++]);
        progress = true;
      }
    }
    for (const auto image : chosen) taken[static_cast<std::size_t>(image)] = 0;
    std::sort(chosen.begin(), chosen.end());
    lists[v] = std::move(chosen);
  }
  return lists;
}

void check_options(const ProbeOptions& options) {
  if (options.per_node < 1) {
    MLL_THROW(UsageError, "images per node must be at least 1 (got ", options.per_node, ")");
  }
}

// Turns per-node lists of table indices into a ProbeSet. Images already in `old` keep their ids;
// the other used images are appended in path order. Unused images are not stored.
ProbeSet assemble(const graph::Graph& graph, const ImageSource& source, const ImageTable& table,
                  const std::vector<std::vector<std::int32_t>>& lists, const ProbeOptions& options,
                  const ProbeSet* old) {
  ProbeSet probe;
  probe.root = source.root;
  probe.per_node = static_cast<std::int32_t>(options.per_node);
  probe.seed = options.seed;
  probe.graph_hash = graph.content_hash();

  std::vector<std::int32_t> id_of(table.files.size(), -1);
  if (old != nullptr) {
    probe.image_paths = old->image_paths;
    probe.image_sizes = old->image_sizes;
    probe.image_digests = old->image_digests;  // new images get theirs from record_fingerprints
    probe.image_mtimes = old->image_mtimes;
    for (std::size_t i = 0; i < old->image_paths.size(); ++i) {
      const auto index = table.find(old->image_paths[i]);
      MLL_CHECK(index >= 0, "old image ", old->image_paths[i], " not in the table");
      id_of[static_cast<std::size_t>(index)] = static_cast<std::int32_t>(i);
    }
  }
  std::vector<char> used(table.files.size(), 0);
  for (const auto& list : lists) {
    for (const auto index : list) used[static_cast<std::size_t>(index)] = 1;
  }
  for (std::size_t index = 0; index < table.files.size(); ++index) {
    if (!used[index] || id_of[index] >= 0) continue;
    if (probe.image_paths.size() >=
        static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max())) {
      MLL_THROW(DataError, source.description, ": too many probe images");
    }
    id_of[index] = static_cast<std::int32_t>(probe.image_paths.size());
    probe.image_paths.push_back(table.files[index].path);
    probe.image_sizes.push_back(table.files[index].size);
    if (!probe.image_digests.empty()) {  // recorded later (record_fingerprints)
      probe.image_digests.push_back(0);
      probe.image_mtimes.push_back(kNotRecorded);
    }
  }

  probe.node_offsets.reserve(graph.size() + 1);
  probe.node_offsets.push_back(0);
  for (const auto& list : lists) {
    const auto begin = probe.node_images.size();
    for (const auto index : list)
      probe.node_images.push_back(id_of[static_cast<std::size_t>(index)]);
    std::sort(probe.node_images.begin() + static_cast<std::ptrdiff_t>(begin),
              probe.node_images.end());
    probe.node_offsets.push_back(static_cast<std::int64_t>(probe.node_images.size()));
  }
  probe.validate();
  return probe;
}

}  // namespace

std::uint64_t Rng::next() noexcept {
  state_ += kGolden;
  return mix64(state_);
}

std::uint64_t Rng::below(std::uint64_t n) noexcept {
  // Rejecting the lowest (2^64 mod n) values leaves a range that is a multiple of n.
  const std::uint64_t threshold = (0 - n) % n;
  for (;;) {
    const std::uint64_t r = next();
    if (r >= threshold) return r % n;
  }
}

std::uint64_t node_stream(std::uint64_t seed, const std::string& wnid) noexcept {
  return mix64(mix64(seed + kGolden) ^ fnv1a64(wnid));
}

ProbeSet build_probe_set(const graph::Graph& graph, const ImageSource& source,
                         const ProbeOptions& options) {
  check_options(options);
  const ImageTable table = index_source(graph, source);
  warn_seeds_without_images(graph, table, source);
  const auto lists = sample_lists(graph, table, options);
  return assemble(graph, source, table, lists, options, nullptr);
}

ProbeSet grow_probe_set(const ProbeSet& old, const graph::Graph& old_graph,
                        const graph::Graph& new_graph, const ImageSource& source,
                        const ProbeOptions& options) {
  check_options(options);
  if (old.per_node != options.per_node || old.seed != options.seed) {
    MLL_THROW(UsageError, "the probe set was built with ", old.per_node,
              " images per node and seed ", old.seed, "; growing it needs the same options (got ",
              options.per_node, " and ", options.seed, ")");
  }
  old.validate();
  if (old.graph_hash != old_graph.content_hash() || old.node_count() != old_graph.size()) {
    MLL_THROW(DataError, "the probe set belongs to graph ", old.graph_hash.substr(0, 12),
              ", not to the old graph given (", old_graph.content_hash().substr(0, 12), ")");
  }
  for (const auto& node : old_graph.nodes()) {
    if (new_graph.index_of(node.wnid) < 0) {
      MLL_THROW(DataError, "node ", node.wnid, " (", node.name, ") of the old graph is missing ",
                "from the new graph: a probe set can only grow");
    }
  }

  const ImageTable table = index_source(new_graph, source);
  for (std::size_t i = 0; i < old.image_count(); ++i) {
    const auto index = table.find(old.image_paths[i]);
    if (index < 0) {
      MLL_THROW(DataError, source.description, ": image '", old.image_paths[i], "' (id ", i,
                ") of the probe set is missing; growing keeps every old image");
    }
    const auto size = table.files[static_cast<std::size_t>(index)].size;
    if (size != old.image_sizes[i]) {
      MLL_THROW(DataError, source.description, ": image '", old.image_paths[i], "' changed size (",
                old.image_sizes[i], " bytes when the probe set was built, ", size,
                " now); its stored embeddings would no longer match");
    }
  }
  warn_seeds_without_images(new_graph, table, source);
  const auto lists = sample_lists(new_graph, table, options);
  return assemble(new_graph, source, table, lists, options, &old);
}

ProbeStats compute_stats(const ProbeSet& probe) {
  ProbeStats stats;
  stats.images = probe.image_count();
  stats.memberships = probe.node_images.size();
  for (std::size_t v = 0; v < probe.node_count(); ++v) {
    const auto count = probe.node_offsets[v + 1] - probe.node_offsets[v];
    if (count == 0) ++stats.empty_nodes;
    if (count == probe.per_node) ++stats.full_nodes;
  }
  std::vector<std::size_t> reuse(probe.image_count(), 0);
  for (const auto id : probe.node_images) {
    stats.max_reuse = std::max(stats.max_reuse, ++reuse[static_cast<std::size_t>(id)]);
  }
  return stats;
}

}  // namespace mll::probe
