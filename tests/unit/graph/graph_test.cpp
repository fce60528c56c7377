#include "mll/graph/graph.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "mll/core/error.hpp"
#include "mll/h5/h5.hpp"
#include "test_paths.hpp"
#include "wordnet_fixture.hpp"

namespace mll::graph {
namespace {

using test::wordnet;

std::string imagenet_list() { return test::source_dir() + "/data/imagenet/imagenet1k_wnids.txt"; }

const Graph& imagenet_graph() {
  static const Graph g = build_graph(wordnet(), read_seeds(imagenet_list(), wordnet()), {});
  return g;
}

TEST(Seeds, ReadsListWithNamesCommentsAndDuplicates) {
  test::ScratchDir dir;
  std::ofstream(dir / "seeds.txt") << "# my classes\n\nn02084071\tdog\nn01440764 tench fish\n"
                                   << "n02084071\n";
  const auto seeds = read_seeds(dir / "seeds.txt", wordnet());
  ASSERT_EQ(seeds.size(), 2u);
  EXPECT_EQ(seeds[0].offset, 2084071u);
  EXPECT_EQ(seeds[0].label, "dog");
  EXPECT_EQ(seeds[1].label, "tench fish");
}

TEST(Seeds, ReadsImageNetStyleDirectory) {
  test::ScratchDir dir;
  std::filesystem::create_directories(dir / "train/n02084071");
  std::filesystem::create_directories(dir / "train/n01440764");
  std::ofstream(dir / "train/README") << "files are ignored";
  const auto seeds = read_seeds(dir / "train", wordnet());
  ASSERT_EQ(seeds.size(), 2u);
  EXPECT_EQ(seeds[0].offset, 1440764u);  // sorted
}

void expect_seed_error(const std::string& content, const std::string& needle) {
  test::ScratchDir dir;
  std::ofstream(dir / "seeds.txt") << content;
  try {
    read_seeds(dir / "seeds.txt", wordnet());
    FAIL() << "accepted: " << content;
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("seeds.txt"), std::string::npos) << e.what();
  }
}

TEST(Seeds, BadSeedsNameTheLine) {
  expect_seed_error("n02084071\nn0208407\n", "seeds.txt:2: malformed wnid 'n0208407'");
  expect_seed_error("dog\n", "seeds.txt:1: malformed wnid 'dog'");
  expect_seed_error("n02084071\n\nv01234567\n", "seeds.txt:3: seed 'v01234567' is not a noun");
  expect_seed_error("n00000001\n", "seeds.txt:1: unknown wnid 'n00000001'");
  expect_seed_error("# nothing\n", "no seeds found");
  test::ScratchDir dir;
  EXPECT_THROW(read_seeds(dir / "missing.txt", wordnet()), DataError);
  std::filesystem::create_directories(dir / "tree/not_a_wnid");
  EXPECT_THROW(read_seeds(dir / "tree", wordnet()), DataError);
}

TEST(Graph, ImageNetClosureIsExact) {
  const Graph& g = imagenet_graph();
  const auto seeds = read_seeds(imagenet_list(), wordnet());
  // Expected closure computed independently, by breadth-first search over WordNet.
  std::set<std::string> expected;
  std::vector<std::uint32_t> queue;
  for (const auto& s : seeds) queue.push_back(s.offset);
  while (!queue.empty()) {
    const auto o = queue.back();
    queue.pop_back();
    if (!expected.insert(wnid_of(o)).second) continue;
    for (auto p : wordnet().find(o)->parents) queue.push_back(p);
  }
  std::set<std::string> actual;
  for (const auto& n : g.nodes()) actual.insert(n.wnid);
  EXPECT_EQ(actual, expected);
  EXPECT_EQ(g.size(), 1860u);
  // Every WordNet parent of every node is an edge of the graph, and nothing else is.
  std::size_t edges = 0;
  for (std::size_t i = 0; i < g.size(); ++i) {
    std::uint32_t offset = 0;
    ASSERT_TRUE(parse_wnid(g.node(i).wnid, &offset));
    std::set<std::string> want, have;
    for (auto p : wordnet().find(offset)->parents) want.insert(wnid_of(p));
    for (auto p : g.parents(i)) have.insert(g.node(p).wnid);
    EXPECT_EQ(have, want) << g.node(i).wnid;
    edges += want.size();
  }
  EXPECT_EQ(g.edges().size(), edges);
  const auto seeds_in_graph =
      std::count_if(g.nodes().begin(), g.nodes().end(), [](const Node& n) { return n.seed; });
  EXPECT_EQ(seeds_in_graph, 1000);
}

TEST(Graph, EntityIsTheOnlyRoot) {
  const Graph& g = imagenet_graph();
  const auto roots = g.roots();
  ASSERT_EQ(roots.size(), 1u);
  EXPECT_EQ(g.node(roots[0]).name, "entity.n.01");
  EXPECT_EQ(g.min_depth()[roots[0]], 0);
}

TEST(Graph, DogNodeAndCaption) {
  const Graph& g = imagenet_graph();
  const auto dog = g.find("n02084071");
  ASSERT_GE(dog, 0);
  EXPECT_EQ(g.find("dog.n.01"), dog);
  EXPECT_EQ(g.node(dog).name, "dog.n.01");
  EXPECT_FALSE(g.node(dog).seed);
  std::set<std::string> parents;
  for (auto p : g.parents(dog)) parents.insert(g.node(p).name);
  EXPECT_EQ(parents, (std::set<std::string>{"canine.n.02", "domestic_animal.n.01"}));
  EXPECT_EQ(g.node(dog).caption.rfind("dog which is a member of the genus Canis", 0), 0u);
  EXPECT_EQ(g.paths_to_root(dog, 100).size(), 2u);
  for (const auto& path : g.paths_to_root(dog, 100)) {
    EXPECT_EQ(path.front(), dog);
    EXPECT_EQ(g.node(path.back()).name, "entity.n.01");
  }
  // 118 ImageNet-1k classes are dogs (the well-known count of dog breeds in ILSVRC).
  const auto below = g.descendants(dog);
  EXPECT_EQ(std::count_if(below.begin(), below.end(), [&](auto i) { return g.node(i).seed; }), 118);
}

TEST(Graph, CaptionStyles) {
  const std::vector<std::string> lemmas{"golden_retriever"};
  EXPECT_EQ(caption_of(lemmas, "an English breed", CaptionStyle::kLemmaWhichIs),
            "golden retriever which is an English breed");
  EXPECT_EQ(caption_of(lemmas, "an English breed", CaptionStyle::kDefinition), "an English breed");
  EXPECT_EQ(parse_caption_style("definition"), CaptionStyle::kDefinition);
  EXPECT_THROW(parse_caption_style("fancy"), UsageError);
}

TEST(Graph, TopologicalOrderPutsParentsFirst) {
  const Graph& g = imagenet_graph();
  std::vector<std::size_t> position(g.size());
  for (std::size_t k = 0; k < g.size(); ++k) position[g.topological_order()[k]] = k;
  for (const auto& e : g.edges()) EXPECT_LT(position[e.parent], position[e.child]);
}

TEST(Graph, DropOptionsRemoveATopLayerAndKeepConnections) {
  const auto seeds = read_seeds(imagenet_list(), wordnet());
  BuildOptions options;
  options.min_depth = 4;
  const Graph g = build_graph(wordnet(), seeds, options);
  const Graph& full = imagenet_graph();
  EXPECT_LT(g.size(), full.size());
  EXPECT_EQ(g.find("entity.n.01"), -1);
  for (std::size_t i = 0; i < g.size(); ++i) {
    EXPECT_TRUE(g.node(i).seed || full.max_depth()[full.index_of(g.node(i).wnid)] >= 4);
  }
  // Every kept node still reaches the same kept ancestors as in the full graph.
  const auto dog = g.find("dog.n.01");
  const auto retriever = g.find("golden_retriever.n.01");
  ASSERT_GE(dog, 0);
  ASSERT_GE(retriever, 0);
  const auto below = g.descendants(dog);
  EXPECT_TRUE(std::binary_search(below.begin(), below.end(), retriever));

  BuildOptions narrow;
  narrow.max_seeds_below = 100;
  const Graph n = build_graph(wordnet(), seeds, narrow);
  EXPECT_EQ(n.find("dog.n.01"), -1);  // 118 seeds below
  EXPECT_GE(n.find("hunting_dog.n.01"), 0);
  std::size_t seed_count = 0;
  for (const auto& node : n.nodes()) seed_count += node.seed;
  EXPECT_EQ(seed_count, 1000u);  // seeds are never dropped
  EXPECT_THROW(build_graph(wordnet(), seeds, BuildOptions{CaptionStyle::kDefinition, -1, 0}),
               UsageError);
}

TEST(Graph, BuildIsDeterministicAndHashReflectsContent) {
  const auto seeds = read_seeds(imagenet_list(), wordnet());
  const Graph a = build_graph(wordnet(), seeds, {});
  EXPECT_EQ(a.content_hash(), imagenet_graph().content_hash());
  BuildOptions definition_only;
  definition_only.caption_style = CaptionStyle::kDefinition;
  EXPECT_NE(build_graph(wordnet(), seeds, definition_only).content_hash(), a.content_hash());
  auto fewer = seeds;
  fewer.pop_back();
  EXPECT_NE(build_graph(wordnet(), fewer, {}).content_hash(), a.content_hash());
}

TEST(Graph, ImageNetRSeeds) {
  const auto seeds =
      read_seeds(test::source_dir() + "/data/imagenet/imagenet_r_wnids.txt", wordnet());
  const Graph g = build_graph(wordnet(), seeds, {});
  EXPECT_EQ(seeds.size(), 200u);
  EXPECT_EQ(g.roots().size(), 1u);
  for (const auto& s : seeds) EXPECT_GE(g.index_of(wnid_of(s.offset)), 0);
}

TEST(Graph, RejectsCyclesAndBadEdges) {
  std::vector<Node> nodes(2);
  nodes[0].wnid = "n00000001";
  nodes[1].wnid = "n00000002";
  EXPECT_THROW(Graph(nodes, {{0, 1}, {1, 0}}, {}, ""), DataError);
  EXPECT_THROW(Graph(nodes, {{0, 2}}, {}, ""), DataError);
  EXPECT_THROW(Graph(nodes, {{0, 0}}, {}, ""), DataError);
  nodes[1].wnid = "n00000001";
  EXPECT_THROW(Graph(nodes, {}, {}, ""), DataError);
}

TEST(GraphFile, RoundTripPreservesEverything) {
  test::ScratchDir dir;
  const Graph& g = imagenet_graph();
  write_graph_file(g, dir / "g.h5", false);
  const Graph back = read_graph_file(dir / "g.h5");
  EXPECT_EQ(back.content_hash(), g.content_hash());
  ASSERT_EQ(back.size(), g.size());
  for (std::size_t i = 0; i < g.size(); ++i) {
    EXPECT_EQ(back.node(i).lemmas, g.node(i).lemmas);
    EXPECT_EQ(back.node(i).seed_label, g.node(i).seed_label);
  }
  EXPECT_EQ(back.edges().size(), g.edges().size());
  EXPECT_EQ(back.options().caption_style, g.options().caption_style);
  // Existing output is kept unless forced.
  EXPECT_THROW(write_graph_file(g, dir / "g.h5", false), UsageError);
  EXPECT_NO_THROW(write_graph_file(g, dir / "g.h5", true));
}

TEST(GraphFile, TamperedOrForeignFilesAreRefused) {
  test::ScratchDir dir;
  write_graph_file(imagenet_graph(), dir / "g.h5", false);
  {
    auto file = h5::File::open(dir / "g.h5", h5::Access::kReadWrite);
    auto group = file.root().open_group("graph");
    auto captions = group.read_strings("caption");
    captions[5] = "edited by hand";
    group.remove("caption");
    group.write_strings("caption", captions);
  }
  EXPECT_THROW(read_graph_file(dir / "g.h5"), DataError);
  {
    auto file = h5::File::create(dir / "other.h5");
    file.root().create_group("graph").set_attr("schema_version", std::int64_t{99});
  }
  try {
    read_graph_file(dir / "other.h5");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 99"), std::string::npos);
  }
  std::ofstream(dir / "text.h5") << "hello";
  EXPECT_THROW(read_graph_file(dir / "text.h5"), DataError);
  EXPECT_THROW(read_graph_file(dir / "missing.h5"), DataError);
}

TEST(GraphStats, CountsAddUp) {
  const auto stats = compute_stats(imagenet_graph());
  EXPECT_EQ(stats.nodes, 1860u);
  EXPECT_EQ(stats.seeds, 1000u);
  EXPECT_EQ(stats.roots, 1u);
  EXPECT_EQ(stats.leaves, 1000u);  // every ImageNet-1k class is a leaf of its own closure
  std::size_t total = 0;
  for (const auto& [depth, count] : stats.depth_histogram) total += count;
  EXPECT_EQ(total, stats.nodes);
  EXPECT_EQ(stats.depth_histogram.at(0), 1u);
}

}  // namespace
}  // namespace mll::graph
