// mll demo: the built-in default job.
#include <filesystem>
#include <iostream>

#include "command.hpp"
#include "graph_summary.hpp"
#include "mll/core/data.hpp"
#include "mll/core/error.hpp"
#include "mll/core/log.hpp"
#include "mll/graph/graph.hpp"

namespace mll::cli {
namespace {

void demo_options(po::options_description& d, po::positional_options_description&) {
  d.add_options()("out,o", po::value<std::string>()->default_value("mll-demo")->value_name("DIR"),
                  "directory for everything the demo writes (created; its files are replaced)")(
      "wordnet",
      po::value<std::string>()->default_value(graph::WordNet::default_dir())->value_name("DIR"),
      "WordNet 3.0 database directory");
}

int demo_run(const po::variables_map& vm) {
  const std::string out = vm["out"].as<std::string>();
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) MLL_THROW(UsageError, out, ": cannot create demo directory: ", ec.message());

  const auto wordnet = graph::WordNet::load(vm["wordnet"].as<std::string>());
  const std::string seeds_path = data_file("imagenet/imagenet1k_wnids.txt");
  const auto seeds = graph::read_seeds(seeds_path, wordnet);
  log::info("demo: semantic graph of the ", seeds.size(), " ImageNet-1k classes over ",
            wordnet.size(), " WordNet noun synsets");
  const auto graph = graph::build_graph(wordnet, seeds, graph::BuildOptions{});
  const std::string graph_path = (std::filesystem::path(out) / "graph.h5").string();
  graph::write_graph_file(graph, graph_path, /*force=*/true);
  print_graph_summary(std::cout, graph, graph_path);
  const auto dog = graph.find("n02084071");
  if (dog >= 0) {
    std::cout << "\n";
    print_node(std::cout, graph, dog, 3);
  }
  return 0;
}

}  // namespace

void add_demo_commands(std::vector<Command>& commands) {
  commands.push_back({"demo", "run the built-in default end to end (see README)", "[--out DIR]",
                      demo_options, demo_run});
}

}  // namespace mll::cli
