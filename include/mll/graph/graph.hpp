// The semantic graph (method.md section 1): seed concepts plus all of their WordNet hypernym
// ancestors, edges child -> parent, a caption per node. Built once, stored in HDF5 under /graph,
// identified by a content hash that every later artefact (probe set, labels) refers to.
//
// Nothing here is collective. Building and reading are deterministic: the same WordNet, seeds
// and options give the same nodes in the same order and the same hash.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mll/graph/wordnet.hpp"

namespace mll::h5 {
class Group;
}

namespace mll::graph {

// One seed concept: a wnid and, optionally, the name its source gave it ("tench").
struct Seed {
  std::uint32_t offset = 0;
  std::string label;
};

// Reads seeds from a list file (one wnid per line, optionally followed by a tab or space and a
// name; blank lines and '#' comments ignored) or from a directory whose subfolders are wnids
// (the ImageNet layout). Validates each wnid against `wordnet`. Duplicates are dropped with a
// warning. Throws DataError naming the file and line (or folder) of the first bad seed.
std::vector<Seed> read_seeds(const std::string& path, const WordNet& wordnet);

enum class CaptionStyle {
  kLemmaWhichIs,  // "{first lemma} which is {definition}" (the paper; default)
  kDefinition,    // "{definition}" (the authors' code)
};

// "lemma-which-is" or "definition"; throws UsageError otherwise.
CaptionStyle parse_caption_style(const std::string& text);
std::string to_string(CaptionStyle style);

struct BuildOptions {
  CaptionStyle caption_style = CaptionStyle::kLemmaWhichIs;
  // Drop non-seed nodes whose longest path from the root has fewer than this many edges
  // (0 keeps every ancestor). Longest-path depth is used so that a dropped node's ancestors are
  // dropped too: the graph loses a top layer, never a middle.
  int min_depth = 0;
  // Drop non-seed nodes that have more than this many seeds at or below them (0: no limit).
  // Such nodes ("object", "whole") separate nothing useful for selection.
  int max_seeds_below = 0;
};

struct Node {
  std::string wnid;
  std::string name;                 // NLTK-style, "dog.n.01"
  std::vector<std::string> lemmas;  // underscores kept, as in WordNet
  std::string definition;
  std::string caption;
  bool seed = false;
  std::string seed_label;  // the seed list's name for it, if any
};

struct Edge {
  std::int32_t child = 0;
  std::int32_t parent = 0;
};

class Graph {
 public:
  Graph() = default;
  // Takes nodes and edges, validates them (indices in range, no self loops, no duplicate wnids,
  // acyclic) and computes the adjacency. Throws DataError when invalid.
  Graph(std::vector<Node> nodes, std::vector<Edge> edges, BuildOptions options,
        std::string wordnet_sha256);

  std::size_t size() const noexcept { return nodes_.size(); }
  const std::vector<Node>& nodes() const noexcept { return nodes_; }
  const Node& node(std::size_t i) const { return nodes_.at(i); }
  const std::vector<Edge>& edges() const noexcept { return edges_; }
  const std::vector<std::int32_t>& parents(std::size_t i) const { return parents_.at(i); }
  const std::vector<std::int32_t>& children(std::size_t i) const { return children_.at(i); }
  const BuildOptions& options() const noexcept { return options_; }
  const std::string& wordnet_sha256() const noexcept { return wordnet_sha256_; }

  // Index of a wnid, or -1.
  std::int32_t index_of(const std::string& wnid) const;
  // Index by wnid, NLTK name, or lemma (case-insensitive, spaces as underscores); -1 if
  // nothing matches, -2 if the lemma names several nodes of the graph.
  std::int32_t find(const std::string& key) const;

  std::vector<std::int32_t> roots() const;
  // Shortest and longest number of edges from any root.
  const std::vector<std::int32_t>& min_depth() const noexcept { return min_depth_; }
  const std::vector<std::int32_t>& max_depth() const noexcept { return max_depth_; }
  // Nodes in an order where every parent precedes its children.
  const std::vector<std::int32_t>& topological_order() const noexcept { return topo_; }

  // All strict descendants of node i.
  std::vector<std::int32_t> descendants(std::int32_t i) const;
  // Every path from i up to a root (i first); at most `limit` paths.
  std::vector<std::vector<std::int32_t>> paths_to_root(std::int32_t i, std::size_t limit) const;

  // SHA-256 over a canonical encoding of nodes, captions and edges (not over timestamps or
  // the options that produced them): two graphs with the same hash are interchangeable.
  const std::string& content_hash() const noexcept { return hash_; }

 private:
  std::vector<Node> nodes_;
  std::vector<Edge> edges_;
  BuildOptions options_;
  std::string wordnet_sha256_;
  std::vector<std::vector<std::int32_t>> parents_, children_;
  std::vector<std::int32_t> min_depth_, max_depth_, topo_;
  std::map<std::string, std::int32_t> by_wnid_;
  std::string hash_;
};

// Builds the ancestor closure of `seeds` (hypernyms and instance hypernyms), applies the drop
// options, and orders nodes by wnid. Throws DataError for seeds unknown to `wordnet`.
Graph build_graph(const WordNet& wordnet, const std::vector<Seed>& seeds,
                  const BuildOptions& options);

// The caption of a synset in the given style.
std::string caption_of(const std::vector<std::string>& lemmas, const std::string& definition,
                       CaptionStyle style);

// Summary numbers shown by `mll graph stats` and the demo.
struct GraphStats {
  std::size_t nodes = 0, seeds = 0, edges = 0, roots = 0, leaves = 0;
  std::size_t multi_parent = 0;  // nodes with two or more parents
  std::size_t seeds_inner = 0;   // seeds that have descendants in the graph
  std::int32_t max_min_depth = 0;
  std::map<std::int32_t, std::size_t> depth_histogram;  // by shortest depth
};
GraphStats compute_stats(const Graph& graph);

// Writes the graph into `group` (the /graph group of a graph file or label store): datasets
// and attributes as docs/store-format.md describes. Throws IoError.
void write_graph(const Graph& graph, const h5::Group& group);
// Reads and validates a graph written by write_graph (schema version checked, hash recomputed).
// Throws DataError when the content is inconsistent or of another schema.
Graph read_graph(const h5::Group& group);

// Whole-file helpers: a file whose only content is /graph. write_graph_file writes to a
// temporary name and renames (an existing file is replaced only when `force`).
void write_graph_file(const Graph& graph, const std::string& path, bool force);
Graph read_graph_file(const std::string& path);

// Schema version of the /graph group; bumped on any incompatible layout change.
inline constexpr std::int64_t kGraphSchemaVersion = 1;

}  // namespace mll::graph
