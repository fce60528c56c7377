// mll graph build | show | stats
#include <iomanip>
#include <iostream>

#include "command.hpp"
#include "graph_summary.hpp"
#include "mll/core/data.hpp"
#include "mll/core/error.hpp"
#include "mll/core/log.hpp"
#include "mll/graph/graph.hpp"

namespace mll::cli {
namespace {

void build_options(po::options_description& d, po::positional_options_description&) {
  d.add_options()(
      "seeds", po::value<std::string>()->value_name("FILE|DIR"),
      "seed concepts: a file of wnids (one per line, optional tab + name) or a directory whose "
      "subfolders are wnids; default: the ImageNet-1k list in mll's data/imagenet")(
      "out,o", po::value<std::string>()->default_value("graph.h5")->value_name("FILE"),
      "output HDF5 file")(
      "wordnet",
      po::value<std::string>()->default_value(graph::WordNet::default_dir())->value_name("DIR"),
      "WordNet 3.0 database directory (data.noun, index.noun; Debian package wordnet-base)")(
      "caption-style",
      po::value<std::string>()->default_value("lemma-which-is")->value_name("STYLE"),
      "node captions: 'lemma-which-is' (\"dog which is a member of ...\", the paper) or "
      "'definition' (the gloss alone, the authors' code)")(
      "min-depth", po::value<int>()->default_value(0)->value_name("EDGES"),
      "drop non-seed nodes whose longest path from entity.n.01 has fewer edges than this "
      "(0 keeps all ancestors)")(
      "max-seeds-below", po::value<int>()->default_value(0)->value_name("COUNT"),
      "drop non-seed nodes with more than COUNT seeds at or below them (0: no limit)")(
      "force", po::bool_switch(), "overwrite an existing output file");
}

int build_run(const po::variables_map& vm, distributed::Session& session) {
  const std::string out = vm["out"].as<std::string>();
  fs_check_output(out, vm["force"].as<bool>());
  const std::string seeds_path = vm.count("seeds") ? vm["seeds"].as<std::string>()
                                                   : data_file("imagenet/imagenet1k_wnids.txt");
  graph::BuildOptions options;
  options.caption_style = graph::parse_caption_style(vm["caption-style"].as<std::string>());
  options.min_depth = vm["min-depth"].as<int>();
  options.max_seeds_below = vm["max-seeds-below"].as<int>();
  if (options.min_depth < 0) MLL_THROW(UsageError, "--min-depth must be >= 0");
  if (options.max_seeds_below < 0) MLL_THROW(UsageError, "--max-seeds-below must be >= 0");

  const auto wordnet = graph::WordNet::load(vm["wordnet"].as<std::string>());
  log::info("read ", wordnet.size(), " noun synsets from ", wordnet.dir());
  const auto seeds = graph::read_seeds(seeds_path, wordnet);
  log::info("read ", seeds.size(), " seeds from ", seeds_path);
  const auto graph = graph::build_graph(wordnet, seeds, options);
  graph::write_graph_file(graph, out, vm["force"].as<bool>());
  print_graph_summary(std::cout, graph, out);
  return 0;
}

void show_options(po::options_description& d, po::positional_options_description& p) {
  d.add_options()("node", po::value<std::string>()->required()->value_name("WNID|NAME"),
                  "the node: a wnid (n02084071), an NLTK name (dog.n.01) or a lemma (dog)")(
      "graph,g", po::value<std::string>()->default_value("graph.h5")->value_name("FILE"),
      "graph file written by mll graph build")(
      "max-paths", po::value<int>()->default_value(8)->value_name("COUNT"),
      "print at most this many paths to the root");
  p.add("node", 1);
}

int show_run(const po::variables_map& vm, distributed::Session& session) {
  const std::string path = vm["graph"].as<std::string>();
  const std::string key = vm["node"].as<std::string>();
  const auto graph = graph::read_graph_file(path);
  const std::int32_t index = graph.find(key);
  if (index == -2) {
    MLL_THROW(UsageError, "'", key, "' is a lemma of several nodes of ", path,
              "; give a wnid or an NLTK name");
  }
  if (index < 0) MLL_THROW(UsageError, "no node '", key, "' in ", path);
  print_node(std::cout, graph, index,
             static_cast<std::size_t>(std::max(1, vm["max-paths"].as<int>())));
  return 0;
}

void stats_options(po::options_description& d, po::positional_options_description&) {
  d.add_options()("graph,g",
                  po::value<std::string>()->default_value("graph.h5")->value_name("FILE"),
                  "graph file written by mll graph build");
}

int stats_run(const po::variables_map& vm, distributed::Session& session) {
  const std::string path = vm["graph"].as<std::string>();
  print_graph_summary(std::cout, graph::read_graph_file(path), path);
  return 0;
}

}  // namespace

void add_graph_commands(std::vector<Command>& commands) {
  commands.push_back({"graph build", "build the semantic graph: seeds + their WordNet ancestors",
                      "[--seeds FILE|DIR] [--out graph.h5] [options]", build_options, build_run});
  commands.back().example =
      "mll graph build --seeds data/imagenet/imagenet1k_wnids.txt --out graph.h5";
  commands.push_back({"graph show", "show one node: lemmas, caption, parents, paths to the root",
                      "WNID|NAME [--graph graph.h5]", show_options, show_run});
  commands.back().example = "mll graph show 'golden retriever' --graph graph.h5";
  commands.push_back({"graph stats", "counts and depth histogram of a graph", "[--graph graph.h5]",
                      stats_options, stats_run});
  commands.back().example = "mll graph stats --graph graph.h5";
}

}  // namespace mll::cli
