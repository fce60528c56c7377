#include "mll/graph/graph.hpp"

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "mll/core/error.hpp"
#include "mll/core/hash.hpp"
#include "mll/core/log.hpp"

namespace mll::graph {
namespace {

std::string trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  const auto end = text.find_last_not_of(" \t\r");
  return text.substr(begin, end - begin + 1);
}

// Validates one wnid token from a seed source; `where` names the file:line or folder.
std::uint32_t check_seed(const std::string& token, const WordNet& wordnet,
                         const std::string& where) {
  std::uint32_t offset = 0;
  if (!parse_wnid(token, &offset)) {
    if (token.size() == 9 && std::string("vars").find(token[0]) != std::string::npos &&
        std::all_of(token.begin() + 1, token.end(), [](char c) { return std::isdigit(c); })) {
      MLL_THROW(DataError, where, ": seed '", token, "' is not a noun (only n-prefixed noun ",
                "synsets can be graph nodes)");
    }
    MLL_THROW(DataError, where, ": malformed wnid '", token, "' (expected 'n' and 8 digits)");
  }
  if (wordnet.find(offset) == nullptr) {
    MLL_THROW(DataError, where, ": unknown wnid '", token, "' (no noun synset at that offset ",
              "in WordNet 3.0)");
  }
  return offset;
}

}  // namespace

std::vector<Seed> read_seeds(const std::string& path, const WordNet& wordnet) {
  namespace stdfs = std::filesystem;
  std::error_code ec;
  std::vector<Seed> seeds;
  if (stdfs::is_directory(path, ec)) {
    std::vector<std::string> folders;
    for (const auto& entry : stdfs::directory_iterator(path, ec)) {
      if (entry.is_directory()) folders.push_back(entry.path().filename().string());
    }
    if (ec) MLL_THROW(IoError, path, ": cannot list seed directory: ", ec.message());
    std::sort(folders.begin(), folders.end());
    for (const auto& folder : folders) {
      const std::string where = (stdfs::path(path) / folder).string();
      seeds.push_back({check_seed(folder, wordnet, where), ""});
    }
  } else {
    std::ifstream in(path);
    if (!stdfs::exists(path, ec)) MLL_THROW(DataError, path, ": seed file not found");
    if (!in) MLL_THROW(IoError, path, ": cannot open seed file");
    std::string line;
    std::size_t number = 0;
    while (std::getline(in, line)) {
      ++number;
      const std::string text = trim(line);
      if (text.empty() || text[0] == '#') continue;
      const auto split = text.find_first_of(" \t");
      const std::string token = text.substr(0, split);
      const std::string label = split == std::string::npos ? "" : trim(text.substr(split + 1));
      seeds.push_back({check_seed(token, wordnet, cat(path, ":", number)), label});
    }
  }
  if (seeds.empty()) MLL_THROW(DataError, path, ": no seeds found");

  std::vector<Seed> unique;
  std::unordered_set<std::uint32_t> seen;
  for (auto& seed : seeds) {
    if (seen.insert(seed.offset).second) {
      unique.push_back(std::move(seed));
    } else {
      log::warn(path, ": duplicate seed ", wnid_of(seed.offset), " ignored");
    }
  }
  return unique;
}

CaptionStyle parse_caption_style(const std::string& text) {
  if (text == "lemma-which-is") return CaptionStyle::kLemmaWhichIs;
  if (text == "definition") return CaptionStyle::kDefinition;
  MLL_THROW(UsageError, "unknown caption style '", text,
            "' (expected lemma-which-is or definition)");
}

std::string to_string(CaptionStyle style) {
  return style == CaptionStyle::kLemmaWhichIs ? "lemma-which-is" : "definition";
}

std::string caption_of(const std::vector<std::string>& lemmas, const std::string& definition,
                       CaptionStyle style) {
  if (style == CaptionStyle::kDefinition) return definition;
  std::string lemma = lemmas.empty() ? std::string() : lemmas.front();
  std::replace(lemma.begin(), lemma.end(), '_', ' ');
  return lemma + " which is " + definition;
}

// ---------------------------------------------------------------------------------------------
// Graph

Graph::Graph(std::vector<Node> nodes, std::vector<Edge> edges, BuildOptions options,
             std::string wordnet_sha256)
    : nodes_(std::move(nodes)),
      edges_(std::move(edges)),
      options_(options),
      wordnet_sha256_(std::move(wordnet_sha256)) {
  const auto n = static_cast<std::int32_t>(nodes_.size());
  parents_.assign(nodes_.size(), {});
  children_.assign(nodes_.size(), {});
  for (std::int32_t i = 0; i < n; ++i) {
    if (!by_wnid_.emplace(nodes_[i].wnid, i).second) {
      MLL_THROW(DataError, "graph: duplicate node ", nodes_[i].wnid);
    }
  }
  for (const Edge& e : edges_) {
    if (e.child < 0 || e.child >= n || e.parent < 0 || e.parent >= n || e.child == e.parent) {
      MLL_THROW(DataError, "graph: bad edge ", e.child, " -> ", e.parent, " (", n, " nodes)");
    }
    parents_[e.child].push_back(e.parent);
    children_[e.parent].push_back(e.child);
  }

  // Kahn's algorithm from the roots: gives a parents-first order and detects cycles.
  std::vector<std::int32_t> pending(nodes_.size());
  std::deque<std::int32_t> ready;
  for (std::int32_t i = 0; i < n; ++i) {
    pending[i] = static_cast<std::int32_t>(parents_[i].size());
    if (pending[i] == 0) ready.push_back(i);
  }
  min_depth_.assign(nodes_.size(), 0);
  max_depth_.assign(nodes_.size(), 0);
  while (!ready.empty()) {
    const std::int32_t v = ready.front();
    ready.pop_front();
    topo_.push_back(v);
    for (std::int32_t c : children_[v]) {
      min_depth_[c] = (pending[c] == static_cast<std::int32_t>(parents_[c].size()))
                          ? min_depth_[v] + 1
                          : std::min(min_depth_[c], min_depth_[v] + 1);
      max_depth_[c] = std::max(max_depth_[c], max_depth_[v] + 1);
      if (--pending[c] == 0) ready.push_back(c);
    }
  }
  if (topo_.size() != nodes_.size()) MLL_THROW(DataError, "graph: the edges contain a cycle");

  Sha256 hash;
  hash.update_field("mll-graph-v1").update_u64(nodes_.size());
  for (const Node& node : nodes_) {
    hash.update_field(node.wnid).update_field(node.name).update_u64(node.lemmas.size());
    for (const auto& lemma : node.lemmas) hash.update_field(lemma);
    hash.update_field(node.definition).update_field(node.caption);
    hash.update_u64(node.seed ? 1 : 0);
  }
  hash.update_u64(edges_.size());
  for (const Edge& e : edges_) {
    hash.update_u64(static_cast<std::uint64_t>(e.child));
    hash.update_u64(static_cast<std::uint64_t>(e.parent));
  }
  hash_ = hash.hex();
}

std::int32_t Graph::index_of(const std::string& wnid) const {
  const auto it = by_wnid_.find(wnid);
  return it == by_wnid_.end() ? -1 : it->second;
}

std::int32_t Graph::find(const std::string& key) const {
  if (const std::int32_t i = index_of(key); i >= 0) return i;
  std::int32_t match = -1;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].name == key) return static_cast<std::int32_t>(i);
  }
  std::string lemma = key;
  std::replace(lemma.begin(), lemma.end(), ' ', '_');
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    for (const auto& l : nodes_[i].lemmas) {
      if (l.size() == lemma.size() &&
          std::equal(l.begin(), l.end(), lemma.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
          })) {
        if (match >= 0 && match != static_cast<std::int32_t>(i)) return -2;  // ambiguous
        match = static_cast<std::int32_t>(i);
      }
    }
  }
  return match;
}

std::vector<std::int32_t> Graph::roots() const {
  std::vector<std::int32_t> out;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (parents_[i].empty()) out.push_back(static_cast<std::int32_t>(i));
  }
  return out;
}

std::vector<std::int32_t> Graph::descendants(std::int32_t i) const {
  std::vector<char> seen(nodes_.size(), 0);
  std::vector<std::int32_t> stack{i}, out;
  while (!stack.empty()) {
    const std::int32_t v = stack.back();
    stack.pop_back();
    for (std::int32_t c : children_.at(v)) {
      if (!seen[c]) {
        seen[c] = 1;
        out.push_back(c);
        stack.push_back(c);
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::vector<std::int32_t>> Graph::paths_to_root(std::int32_t i,
                                                            std::size_t limit) const {
  std::vector<std::vector<std::int32_t>> done;
  std::vector<std::vector<std::int32_t>> partial{{i}};
  while (!partial.empty() && done.size() < limit) {
    auto path = std::move(partial.back());
    partial.pop_back();
    const auto& ps = parents_.at(path.back());
    if (ps.empty()) {
      done.push_back(std::move(path));
      continue;
    }
    // Push in reverse so that the first parent's paths come out first.
    for (auto it = ps.rbegin(); it != ps.rend(); ++it) {
      auto longer = path;
      longer.push_back(*it);
      partial.push_back(std::move(longer));
    }
  }
  return done;
}

// ---------------------------------------------------------------------------------------------
// Building

Graph build_graph(const WordNet& wordnet, const std::vector<Seed>& seeds,
                  const BuildOptions& options) {
  if (options.min_depth < 0 || options.max_seeds_below < 0) {
    MLL_THROW(UsageError, "graph options must not be negative");
  }
  // Ancestor closure over WordNet's hypernym relation.
  std::set<std::uint32_t> closure;
  std::unordered_map<std::uint32_t, std::string> seed_labels;
  std::vector<std::uint32_t> stack;
  for (const Seed& seed : seeds) {
    if (wordnet.find(seed.offset) == nullptr) {
      MLL_THROW(DataError, "unknown seed wnid ", wnid_of(seed.offset));
    }
    seed_labels.emplace(seed.offset, seed.label);
    stack.push_back(seed.offset);
  }
  while (!stack.empty()) {
    const std::uint32_t offset = stack.back();
    stack.pop_back();
    if (!closure.insert(offset).second) continue;
    for (std::uint32_t parent : wordnet.find(offset)->parents) stack.push_back(parent);
  }

  // The full closure as a graph first: depths and seed counts decide what the options drop.
  std::vector<std::uint32_t> offsets(closure.begin(), closure.end());
  std::unordered_map<std::uint32_t, std::int32_t> index;
  for (std::size_t i = 0; i < offsets.size(); ++i) {
    index.emplace(offsets[i], static_cast<std::int32_t>(i));
  }
  std::vector<std::vector<std::int32_t>> parents(offsets.size());
  for (std::size_t i = 0; i < offsets.size(); ++i) {
    for (std::uint32_t p : wordnet.find(offsets[i])->parents) {
      const std::int32_t pi = index.at(p);
      if (std::find(parents[i].begin(), parents[i].end(), pi) == parents[i].end()) {
        parents[i].push_back(pi);
      }
    }
  }
  std::vector<Node> full_nodes(offsets.size());
  std::vector<Edge> full_edges;
  for (std::size_t i = 0; i < offsets.size(); ++i) {
    for (std::int32_t p : parents[i]) full_edges.push_back({static_cast<std::int32_t>(i), p});
    full_nodes[i].wnid = wnid_of(offsets[i]);
  }
  const Graph full(full_nodes, full_edges, options, wordnet.data_sha256());

  std::vector<char> keep(offsets.size(), 1);
  if (options.min_depth > 0 || options.max_seeds_below > 0) {
    for (std::size_t i = 0; i < offsets.size(); ++i) {
      if (seed_labels.count(offsets[i]) != 0) continue;  // seeds carry images: never dropped
      if (full.max_depth()[i] < options.min_depth) keep[i] = 0;
      if (options.max_seeds_below > 0) {
        std::size_t below = 0;
        for (std::int32_t d : full.descendants(static_cast<std::int32_t>(i))) {
          below += seed_labels.count(offsets[d]);
        }
        if (below > static_cast<std::size_t>(options.max_seeds_below)) keep[i] = 0;
      }
    }
  }

  // Kept nodes, in wnid order, with edges to their nearest kept ancestors (so that dropping a
  // node never disconnects a kept child from a kept grandparent).
  std::vector<std::int32_t> new_index(offsets.size(), -1);
  std::vector<Node> nodes;
  for (std::size_t i = 0; i < offsets.size(); ++i) {
    if (!keep[i]) continue;
    const Synset& synset = *wordnet.find(offsets[i]);
    Node node;
    node.wnid = wnid_of(synset.offset);
    node.name = synset.name;
    node.lemmas = synset.lemmas;
    node.definition = synset.definition;
    node.caption = caption_of(synset.lemmas, synset.definition, options.caption_style);
    if (const auto it = seed_labels.find(synset.offset); it != seed_labels.end()) {
      node.seed = true;
      node.seed_label = it->second;
    }
    new_index[i] = static_cast<std::int32_t>(nodes.size());
    nodes.push_back(std::move(node));
  }
  std::vector<Edge> edges;
  for (std::size_t i = 0; i < offsets.size(); ++i) {
    if (!keep[i]) continue;
    std::set<std::int32_t> nearest;
    std::vector<std::int32_t> frontier(parents[i].begin(), parents[i].end());
    std::set<std::int32_t> visited;
    while (!frontier.empty()) {
      const std::int32_t p = frontier.back();
      frontier.pop_back();
      if (!visited.insert(p).second) continue;
      if (keep[p]) {
        nearest.insert(new_index[p]);
      } else {
        frontier.insert(frontier.end(), parents[p].begin(), parents[p].end());
      }
    }
    for (std::int32_t p : nearest) edges.push_back({new_index[i], p});
  }
  std::sort(edges.begin(), edges.end(), [](const Edge& a, const Edge& b) {
    return a.child != b.child ? a.child < b.child : a.parent < b.parent;
  });
  return Graph(std::move(nodes), std::move(edges), options, wordnet.data_sha256());
}

GraphStats compute_stats(const Graph& graph) {
  GraphStats stats;
  stats.nodes = graph.size();
  stats.edges = graph.edges().size();
  stats.roots = graph.roots().size();
  for (std::size_t i = 0; i < graph.size(); ++i) {
    const bool leaf = graph.children(i).empty();
    stats.leaves += leaf ? 1 : 0;
    stats.multi_parent += graph.parents(i).size() >= 2 ? 1 : 0;
    if (graph.node(i).seed) {
      ++stats.seeds;
      stats.seeds_inner += leaf ? 0 : 1;
    }
    const std::int32_t depth = graph.min_depth()[i];
    stats.max_min_depth = std::max(stats.max_min_depth, depth);
    ++stats.depth_histogram[depth];
  }
  return stats;
}

}  // namespace mll::graph
