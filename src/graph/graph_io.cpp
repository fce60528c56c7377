// The /graph group: layout in docs/store-format.md.
#include <chrono>
#include <ctime>

#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/core/time.hpp"
#include "mll/core/version.hpp"
#include "mll/graph/graph.hpp"
#include "mll/h5/h5.hpp"

namespace mll::graph {

void write_graph(const Graph& graph, const h5::Group& group) {
  const std::size_t n = graph.size();
  std::vector<std::string> wnids, names, definitions, captions, seed_labels, lemmas;
  std::vector<std::int64_t> lemma_offsets{0};
  std::vector<std::uint8_t> seeds;
  std::vector<std::int32_t> edges, min_depth(graph.min_depth()), max_depth(graph.max_depth());
  for (const Node& node : graph.nodes()) {
    wnids.push_back(node.wnid);
    names.push_back(node.name);
    definitions.push_back(node.definition);
    captions.push_back(node.caption);
    seed_labels.push_back(node.seed_label);
    seeds.push_back(node.seed ? 1 : 0);
    lemmas.insert(lemmas.end(), node.lemmas.begin(), node.lemmas.end());
    lemma_offsets.push_back(static_cast<std::int64_t>(lemmas.size()));
  }
  for (const Edge& e : graph.edges()) {
    edges.push_back(e.child);
    edges.push_back(e.parent);
  }
  group.set_attr("schema_version", kGraphSchemaVersion);
  group.set_attr("content_hash", graph.content_hash());
  group.set_attr("wordnet_version", "3.0");
  group.set_attr("wordnet_data_sha256", graph.wordnet_sha256());
  group.set_attr("caption_style", to_string(graph.options().caption_style));
  group.set_attr("min_depth", static_cast<std::int64_t>(graph.options().min_depth));
  group.set_attr("max_seeds_below", static_cast<std::int64_t>(graph.options().max_seeds_below));
  group.set_attr("node_count", static_cast<std::int64_t>(n));
  group.set_attr("edge_count", static_cast<std::int64_t>(graph.edges().size()));
  group.set_attr("created_utc", utc_now());
  group.set_attr("mll_version", version());
  group.write_strings("wnid", wnids);
  group.write_strings("name", names);
  group.write_strings("definition", definitions);
  group.write_strings("caption", captions);
  group.write_strings("seed_label", seed_labels);
  group.write_strings("lemma", lemmas);
  group.write("lemma_offsets", lemma_offsets);
  group.write("is_seed", seeds);
  group.write("min_depth", min_depth);
  group.write("max_depth", max_depth);
  group.write("edges", edges, {graph.edges().size(), 2});
}

Graph read_graph(const h5::Group& group) {
  const std::string where = group.file() + ":" + group.path();
  if (!group.has_attr("schema_version")) {
    MLL_THROW(DataError, where, ": not an mll graph (no schema_version attribute)");
  }
  const std::int64_t schema = group.attr_int("schema_version");
  if (schema != kGraphSchemaVersion) {
    MLL_THROW(DataError, where, ": graph schema version ", schema, " is not supported (this mll ",
              "reads version ", kGraphSchemaVersion, ")");
  }
  const auto wnids = group.read_strings("wnid");
  const auto names = group.read_strings("name");
  const auto definitions = group.read_strings("definition");
  const auto captions = group.read_strings("caption");
  const auto seed_labels = group.read_strings("seed_label");
  const auto lemmas = group.read_strings("lemma");
  const auto lemma_offsets = group.read<std::int64_t>("lemma_offsets");
  const auto seeds = group.read<std::uint8_t>("is_seed");
  h5::Dims edge_dims;
  const auto edge_values = group.read<std::int32_t>("edges", &edge_dims);
  const std::size_t n = wnids.size();
  if (names.size() != n || definitions.size() != n || captions.size() != n ||
      seed_labels.size() != n || seeds.size() != n || lemma_offsets.size() != n + 1) {
    MLL_THROW(DataError, where, ": node datasets have different lengths");
  }
  if (!(edge_dims.size() == 2 && edge_dims[1] == 2) && !edge_values.empty()) {
    MLL_THROW(DataError, where, "/edges: expected shape (E, 2)");
  }
  std::vector<Node> nodes(n);
  for (std::size_t i = 0; i < n; ++i) {
    Node& node = nodes[i];
    node.wnid = wnids[i];
    node.name = names[i];
    node.definition = definitions[i];
    node.caption = captions[i];
    node.seed = seeds[i] != 0;
    node.seed_label = seed_labels[i];
    const auto begin = lemma_offsets[i], end = lemma_offsets[i + 1];
    if (begin < 0 || end < begin || static_cast<std::size_t>(end) > lemmas.size()) {
      MLL_THROW(DataError, where, "/lemma_offsets: out of range at node ", i);
    }
    node.lemmas.assign(lemmas.begin() + begin, lemmas.begin() + end);
  }
  std::vector<Edge> edges;
  for (std::size_t e = 0; e + 1 < edge_values.size(); e += 2) {
    edges.push_back({edge_values[e], edge_values[e + 1]});
  }
  BuildOptions options;
  options.caption_style = parse_caption_style(group.attr_string("caption_style"));
  options.min_depth = static_cast<int>(group.attr_int("min_depth"));
  options.max_seeds_below = static_cast<int>(group.attr_int("max_seeds_below"));
  Graph graph(std::move(nodes), std::move(edges), options,
              group.attr_string("wordnet_data_sha256"));
  const std::string stored_hash = group.attr_string("content_hash");
  if (stored_hash != graph.content_hash()) {
    MLL_THROW(DataError, where, ": content hash mismatch (stored ", stored_hash.substr(0, 12),
              ", content ", graph.content_hash().substr(0, 12), "): the graph was modified");
  }
  return graph;
}

void write_graph_file(const Graph& graph, const std::string& path, bool force) {
  fs::check_output_path(path, force);
  fs::AtomicOutput output(path);
  {
    h5::File file = h5::File::create(output.temp_path(), /*truncate=*/true);
    {
      const h5::Group root = file.root();
      root.set_attr("mll_file_kind", "graph");
      write_graph(graph, root.create_group("graph"));
    }
    file.close();  // every object handle is closed by now, so this really closes the file
  }
  output.commit();
}

Graph read_graph_file(const std::string& path) {
  fs::require_input_file(path, "graph file");
  h5::File file = h5::File::open(path, h5::Access::kReadOnly);
  const h5::Group root = file.root();
  if (!root.has("graph")) MLL_THROW(DataError, path, ": no /graph group (not an mll graph file)");
  return read_graph(root.open_group("graph"));
}

}  // namespace mll::graph
