// Choosing the probe images of every graph node (method.md section 1, docs/probe.md).
//
// A node with its own images keeps up to `per_node` of them, chosen at random. An inner node
// takes up to `per_node` images from its children's probe lists (and its own list, if it has
// images of its own), round-robin, so that every child is represented equally as long as it has
// images. Randomness comes from a stream derived from (seed, wnid) only, so a node's probe images
// depend on nothing but its own subtree: adding seeds elsewhere never reshuffles it.
//
// Nothing here is collective.
#pragma once

#include <cstdint>
#include <string>

#include "mll/graph/graph.hpp"
#include "mll/probe/probe_set.hpp"
#include "mll/probe/sources.hpp"

namespace mll::probe {

struct ProbeOptions {
  int per_node = 75;       // n_max of the paper
  std::uint64_t seed = 0;  // the same seed, graph and source give the same probe set
};

// Builds the probe set of `graph` from `source`. Throws UsageError when per_node < 1; DataError
// when the source has images of a wnid that is not a node of the graph (naming the wnid and
// where its images are). Seeds without images are warned about and left empty.
ProbeSet build_probe_set(const graph::Graph& graph, const ImageSource& source,
                         const ProbeOptions& options);

// Grows `old` (built on `old_graph`) to `new_graph`, which must contain every node of
// `old_graph`. Old images keep their ids (old image paths are a prefix of the new ones) and
// new images are appended; membership is recomputed for every node, which leaves every node
// whose subtree and images did not change exactly as it was. `source` must still hold every
// image of `old`, with the same size.
// Throws UsageError when `options` differ from the ones `old` was built with; DataError when
// `old` does not belong to `old_graph`, `new_graph` lacks an old node, an old image is missing
// from `source` or its size changed, and for every reason build_probe_set throws.
ProbeSet grow_probe_set(const ProbeSet& old, const graph::Graph& old_graph,
                        const graph::Graph& new_graph, const ImageSource& source,
                        const ProbeOptions& options);

// Summary numbers for `mll probe build` and the docs.
struct ProbeStats {
  std::size_t images = 0;       // distinct image files stored
  std::size_t memberships = 0;  // (node, image) pairs
  std::size_t empty_nodes = 0;  // nodes without any probe image
  std::size_t full_nodes = 0;   // nodes with exactly per_node images
  std::size_t max_reuse = 0;    // most nodes one image serves
};
ProbeStats compute_stats(const ProbeSet& probe);

// The random stream the sampler uses: SplitMix64 (Steele, Lea, Flood 2014) and an unbiased
// bounded draw by rejection. Implemented here rather than taken from <random> because
// std::uniform_int_distribution and std::shuffle are implementation-defined: libstdc++ and
// libc++ give different probe sets for the same seed, and the probe set is part of the identity
// of every stored label.
class Rng {
 public:
  explicit Rng(std::uint64_t state) noexcept : state_(state) {}
  std::uint64_t next() noexcept;
  // Uniform in [0, n); n must be > 0.
  std::uint64_t below(std::uint64_t n) noexcept;

 private:
  std::uint64_t state_;
};

// The initial state of node `wnid`'s stream for a given seed.
std::uint64_t node_stream(std::uint64_t seed, const std::string& wnid) noexcept;

}  // namespace mll::probe
