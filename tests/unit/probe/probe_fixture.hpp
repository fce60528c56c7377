// Hermetic inputs for the probe tests: small real WordNet graphs and synthetic image trees whose
// files are a few bytes each (sampling never decodes).
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "mll/graph/graph.hpp"
#include "mll/probe/probe_set.hpp"
#include "wordnet_fixture.hpp"

namespace mll::test {

// Seeds used throughout: eight dog breeds from three branches and two fish.
inline const std::vector<std::string>& dog_and_fish_wnids() {
  static const std::vector<std::string> wnids = {
      "n02085620",  // Chihuahua        (toy dog)
      "n02085782",  // Japanese spaniel (toy dog)
      "n02085936",  // Maltese dog      (toy dog)
      "n02086240",  // Shih-Tzu         (toy dog)
      "n02088094",  // Afghan hound     (hound)
      "n02088364",  // beagle           (hound)
      "n02099601",  // golden retriever
      "n02106662",  // German shepherd
      "n01440764",  // tench
      "n01443537",  // goldfish
  };
  return wnids;
}

inline graph::Graph graph_of(const std::vector<std::string>& wnids) {
  std::vector<graph::Seed> seeds;
  for (const auto& wnid : wnids) {
    std::uint32_t offset = 0;
    if (!graph::parse_wnid(wnid, &offset)) throw std::runtime_error("bad wnid " + wnid);
    seeds.push_back({offset, ""});
  }
  return graph::build_graph(wordnet(), seeds, {});
}

// Writes `count` files "img_NNN.JPEG" of 1 + (i % 7) bytes into root/wnid.
inline void make_class(const std::string& root, const std::string& wnid, int count) {
  const auto dir = std::filesystem::path(root) / wnid;
  std::filesystem::create_directories(dir);
  for (int i = 0; i < count; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "img_%03d.JPEG", i);
    std::ofstream(dir / name) << std::string(static_cast<std::size_t>(1 + i % 7), 'x');
  }
}

inline void make_tree(const std::string& root, const std::map<std::string, int>& counts) {
  for (const auto& [wnid, count] : counts) make_class(root, wnid, count);
}

// Node wnid -> the paths of its probe images (ids resolved), for comparisons across graphs.
inline std::map<std::string, std::set<std::string>> membership(const probe::ProbeSet& probe,
                                                               const graph::Graph& graph) {
  std::map<std::string, std::set<std::string>> out;
  for (std::size_t v = 0; v < graph.size(); ++v) {
    auto& paths = out[graph.node(v).wnid];
    for (const auto id : probe.images_of(v)) {
      paths.insert(probe.image_paths[static_cast<std::size_t>(id)]);
    }
  }
  return out;
}

inline bool same_probe(const probe::ProbeSet& a, const probe::ProbeSet& b) {
  return a.root == b.root && a.image_paths == b.image_paths && a.image_sizes == b.image_sizes &&
         a.node_offsets == b.node_offsets && a.node_images == b.node_images &&
         a.per_node == b.per_node && a.seed == b.seed && a.graph_hash == b.graph_hash;
}

}  // namespace mll::test
