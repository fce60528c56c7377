#include "mll/probe/sampling.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "mll/core/error.hpp"
#include "mll/probe/probe_set.hpp"
#include "mll/probe/sources.hpp"
#include "probe_fixture.hpp"
#include "test_paths.hpp"

namespace mll::probe {
namespace {

using test::graph_of;
using test::make_tree;
using test::membership;

// Image counts per seed: some below, some above the cap of 10 used by most tests.
std::map<std::string, int> default_counts() {
  return {{"n02085620", 30}, {"n02085782", 4},  {"n02085936", 12}, {"n02086240", 25},
          {"n02088094", 18}, {"n02088364", 40}, {"n02099601", 2},  {"n02106662", 15},
          {"n01440764", 60}, {"n01443537", 11}};
}

class ProbeSampling : public ::testing::Test {
 protected:
  void SetUp() override {
    make_tree(dir_ / "train", default_counts());
    source_ = scan_image_tree(dir_ / "train");
  }
  ProbeSet build(int per_node = 10, std::uint64_t seed = 0) const {
    return build_probe_set(graph_, source_, {per_node, seed});
  }
  std::int32_t at(const std::string& name) const {
    const auto v = graph_.find(name);
    EXPECT_GE(v, 0) << name;
    return v;
  }

  test::ScratchDir dir_;
  graph::Graph graph_ = graph_of(test::dog_and_fish_wnids());
  ImageSource source_;
};

TEST_F(ProbeSampling, LeavesKeepASampleOfTheirOwnImagesUpToTheCap) {
  const auto probe = build();
  for (const auto& [wnid, count] : default_counts()) {
    const auto v = static_cast<std::size_t>(graph_.index_of(wnid));
    const auto ids = probe.images_of(v);
    EXPECT_EQ(ids.size(), static_cast<std::size_t>(std::min(count, 10))) << wnid;
    for (const auto id : ids) {
      EXPECT_EQ(probe.image_paths[static_cast<std::size_t>(id)].rfind(wnid + "/", 0), 0u);
    }
  }
  for (std::size_t v = 0; v < graph_.size(); ++v) EXPECT_LE(probe.images_of(v).size(), 10u);
  // With 10 seeds below it and at least 2 images each, every ancestor of two seeds is full.
  EXPECT_EQ(probe.images_of(static_cast<std::size_t>(at("dog.n.01"))).size(), 10u);
  EXPECT_EQ(probe.images_of(static_cast<std::size_t>(at("entity.n.01"))).size(), 10u);
}

TEST_F(ProbeSampling, InnerNodesDrawFromDescendantsOnly) {
  const auto probe = build();
  const auto lists = membership(probe, graph_);
  for (std::size_t v = 0; v < graph_.size(); ++v) {
    if (graph_.children(v).empty()) continue;
    std::set<std::string> below;
    for (const auto d : graph_.descendants(static_cast<std::int32_t>(v))) {
      const auto& child = lists.at(graph_.node(static_cast<std::size_t>(d)).wnid);
      below.insert(child.begin(), child.end());
    }
    for (const auto& path : lists.at(graph_.node(v).wnid)) {
      EXPECT_TRUE(below.count(path)) << graph_.node(v).name << " has " << path;
    }
  }
}

// When the children's probe lists are disjoint and each child can give its fair share, the shares
// differ by at most one.
TEST_F(ProbeSampling, InnerNodesAreBalancedAcrossChildren) {
  for (const std::uint64_t seed : {0u, 1u, 2u, 3u}) {
    const auto probe = build(10, seed);
    const auto lists = membership(probe, graph_);
    std::size_t checked = 0;
    for (std::size_t v = 0; v < graph_.size(); ++v) {
      const auto& children = graph_.children(v);
      if (children.size() < 2) continue;
      const std::size_t fair = (10 + children.size() - 1) / children.size();
      bool enough = true;
      std::size_t total = 0;
      std::set<std::string> all;
      for (const auto c : children) {
        const auto& child = lists.at(graph_.node(static_cast<std::size_t>(c)).wnid);
        enough = enough && child.size() >= fair;
        total += child.size();
        all.insert(child.begin(), child.end());
      }
      // dog.n.01 is both a canine and a domestic animal: animal.n.01's children overlap.
      if (!enough || all.size() != total) continue;
      std::vector<std::size_t> shares;
      for (const auto c : children) {
        const auto& child = lists.at(graph_.node(static_cast<std::size_t>(c)).wnid);
        std::size_t share = 0;
        for (const auto& path : lists.at(graph_.node(v).wnid)) share += child.count(path);
        shares.push_back(share);
      }
      const auto [lo, hi] = std::minmax_element(shares.begin(), shares.end());
      EXPECT_LE(*hi - *lo, 1u) << graph_.node(v).name << " seed " << seed;
      ++checked;
    }
    EXPECT_GE(checked, 2u);  // e.g. toy_dog.n.01 (4 breeds) and the fish/dog split
  }
}

TEST_F(ProbeSampling, AChildThatRunsOutLeavesTheRestToTheOthers) {
  // retriever (golden retriever, 2 images) and shepherd lines meet at dog.n.01 with the others;
  // a two-seed graph makes the shortfall visible: 2 + 8 = 10.
  const auto small = graph_of({"n02099601", "n02106662"});
  test::ScratchDir dir;
  make_tree(dir / "t", {{"n02099601", 2}, {"n02106662", 15}});
  const auto probe = build_probe_set(small, scan_image_tree(dir / "t"), {10, 0});
  const auto lists = membership(probe, small);
  const auto& dog = lists.at("n02084071");
  ASSERT_EQ(dog.size(), 10u);
  std::size_t retriever = 0;
  for (const auto& path : dog) retriever += path.rfind("n02099601/", 0) == 0;
  EXPECT_EQ(retriever, 2u);
}

TEST_F(ProbeSampling, AnInnerSeedCountsItsOwnImagesAsOneMoreChild) {
  // dog.n.01 as a seed with images of its own, above two breeds.
  const auto g = graph_of({"n02084071", "n02085620", "n02088364"});
  test::ScratchDir dir;
  make_tree(dir / "t", {{"n02084071", 50}, {"n02085620", 50}, {"n02088364", 50}});
  const auto probe = build_probe_set(g, scan_image_tree(dir / "t"), {9, 0});
  const auto lists = membership(probe, g);
  const auto& dog = lists.at("n02084071");
  ASSERT_EQ(dog.size(), 9u);
  // Three pools (own, toy dog line, hound line) of 9 each: 3 from each.
  std::map<std::string, int> from;
  for (const auto& path : dog) ++from[path.substr(0, 9)];
  EXPECT_EQ(from,
            (std::map<std::string, int>{{"n02084071", 3}, {"n02085620", 3}, {"n02088364", 3}}));
}

TEST_F(ProbeSampling, DeterministicAndSeedDependent) {
  const auto a = build(10, 7);
  const auto b = build_probe_set(graph_, scan_image_tree(dir_ / "train"), {10, 7});
  EXPECT_TRUE(test::same_probe(a, b));
  EXPECT_EQ(a.content_hash(), b.content_hash());
  const auto c = build(10, 8);
  EXPECT_NE(membership(a, graph_), membership(c, graph_));
  EXPECT_NE(a.content_hash(), c.content_hash());
  EXPECT_EQ(a.graph_hash, graph_.content_hash());
  EXPECT_EQ(a.root, source_.root);
  EXPECT_EQ(a.per_node, 10);
  EXPECT_EQ(a.seed, 7u);
}

TEST_F(ProbeSampling, EachUsedImageIsStoredOnceInPathOrder) {
  const auto probe = build();
  EXPECT_TRUE(std::is_sorted(probe.image_paths.begin(), probe.image_paths.end()));
  EXPECT_EQ(std::adjacent_find(probe.image_paths.begin(), probe.image_paths.end()),
            probe.image_paths.end());
  std::vector<char> used(probe.image_count(), 0);
  for (const auto id : probe.node_images) used[static_cast<std::size_t>(id)] = 1;
  EXPECT_EQ(std::count(used.begin(), used.end(), 1),
            static_cast<std::ptrdiff_t>(probe.image_count()));
  // Inner nodes reuse their descendants' images: nothing beyond the seeds' samples is stored.
  std::size_t seed_samples = 0;
  for (const auto& [wnid, count] : default_counts()) seed_samples += std::min(count, 10);
  EXPECT_EQ(probe.image_count(), seed_samples);
  for (std::size_t i = 0; i < probe.image_count(); ++i) {
    const auto& path = probe.image_paths[i];
    const auto& files = source_.by_wnid.at(path.substr(0, 9)).files;
    const auto it = std::find_if(files.begin(), files.end(),
                                 [&](const ImageFile& f) { return f.path == path; });
    ASSERT_NE(it, files.end());
    EXPECT_EQ(probe.image_sizes[i], it->size);
  }
  const auto stats = compute_stats(probe);
  EXPECT_EQ(stats.images, probe.image_count());
  EXPECT_EQ(stats.empty_nodes, 0u);
  EXPECT_GT(stats.max_reuse, 5u);  // a fish image serves the fish chain up to entity
}

// Adding a seed elsewhere changes its ancestors only; every other node keeps its images.
TEST_F(ProbeSampling, NodesAreIndependentOfUnrelatedSeeds) {
  const auto before = membership(build(), graph_);
  auto wnids = test::dog_and_fish_wnids();
  wnids.push_back("n02123045");  // tabby cat
  const auto bigger = graph_of(wnids);
  make_tree(dir_ / "train", {{"n02123045", 20}});
  const auto after_probe = build_probe_set(bigger, scan_image_tree(dir_ / "train"), {10, 0});
  const auto after = membership(after_probe, bigger);
  const auto cat = bigger.index_of("n02123045");
  std::set<std::int32_t> changed_allowed;
  for (std::int32_t v = 0; v < static_cast<std::int32_t>(bigger.size()); ++v) {
    const auto d = bigger.descendants(v);
    if (std::find(d.begin(), d.end(), cat) != d.end()) changed_allowed.insert(v);
  }
  std::size_t same = 0;
  for (const auto& [wnid, paths] : before) {
    if (changed_allowed.count(bigger.index_of(wnid))) continue;
    EXPECT_EQ(after.at(wnid), paths) << wnid;
    ++same;
  }
  EXPECT_GE(same, 15u);  // every dog and fish node below carnivore / vertebrate
}

TEST_F(ProbeSampling, SeedsWithoutImagesGetEmptyLists) {
  test::ScratchDir dir;
  auto counts = default_counts();
  counts.erase("n01443537");  // goldfish: no folder
  make_tree(dir / "t", counts);
  const auto probe = build_probe_set(graph_, scan_image_tree(dir / "t"), {10, 0});
  EXPECT_TRUE(probe.images_of(static_cast<std::size_t>(graph_.index_of("n01443537"))).empty());
  EXPECT_EQ(probe.images_of(static_cast<std::size_t>(graph_.index_of("n01440764"))).size(), 10u);
  EXPECT_GE(compute_stats(probe).empty_nodes, 1u);
}

TEST_F(ProbeSampling, ImagesOfAWnidOutsideTheGraphAreRefused) {
  make_tree(dir_ / "train", {{"n02123045", 3}});
  try {
    build_probe_set(graph_, scan_image_tree(dir_ / "train"), {10, 0});
    FAIL();
  } catch (const DataError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("n02123045"), std::string::npos) << what;
    EXPECT_NE(what.find(dir_ / "train/n02123045"), std::string::npos) << what;
    EXPECT_NE(what.find("not a node of the graph"), std::string::npos) << what;
  }
}

TEST_F(ProbeSampling, ManifestImagesOutsideTheGraphNameTheLine) {
  std::ofstream(dir_ / "m.tsv") << "train/n01440764/img_000.JPEG\tn01440764\n"
                                << "train/n01440764/img_001.JPEG\tn02123045\n";
  try {
    build_probe_set(graph_, read_manifest(dir_ / "m.tsv"), {10, 0});
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("m.tsv:2"), std::string::npos) << e.what();
  }
}

TEST_F(ProbeSampling, ManifestAndTreeGiveTheSameProbeSet) {
  std::ofstream manifest(dir_ / "train/list.tsv");
  for (const auto& [wnid, images] : source_.by_wnid) {
    for (const auto& file : images.files) manifest << file.path << '\t' << wnid << '\n';
  }
  manifest.close();
  const auto from_manifest =
      build_probe_set(graph_, read_manifest(dir_ / "train/list.tsv"), {10, 0});
  EXPECT_TRUE(test::same_probe(from_manifest, build()));
}

TEST_F(ProbeSampling, BadOptionsAreUsageErrors) {
  EXPECT_THROW(build(0), UsageError);
  EXPECT_THROW(build(-3), UsageError);
}

// The probe set is part of every stored label's identity: its bytes must not change with the
// compiler, the standard library or the platform. A change here needs a new probe schema.
TEST_F(ProbeSampling, RandomStreamIsPortable) {
  Rng rng(1234567);
  EXPECT_EQ(rng.next(), 6457827717110365317ULL);  // SplitMix64 reference values
  EXPECT_EQ(rng.next(), 3203168211198807973ULL);
  EXPECT_EQ(rng.next(), 9817491932198370423ULL);
  Rng bounded(42);
  std::vector<std::uint64_t> draws;
  for (int i = 0; i < 6; ++i) draws.push_back(bounded.below(10));
  EXPECT_EQ(draws, (std::vector<std::uint64_t>{3, 1, 8, 4, 0, 2}));
  EXPECT_EQ(node_stream(0, "n01440764"), 9041461374006719410ULL);
  EXPECT_NE(node_stream(0, "n01440764"), node_stream(0, "n01443537"));
  EXPECT_NE(node_stream(0, "n01440764"), node_stream(1, "n01440764"));
}

// Fixed membership for fixed inputs: a change means every existing probe set would be rebuilt
// differently, which needs a new probe schema version (docs/probe.md).
TEST_F(ProbeSampling, GoldenMembership) {
  const auto lists = membership(build(10, 0), graph_);
  const std::set<std::string> tench = {"n01440764/img_002.JPEG", "n01440764/img_011.JPEG",
                                       "n01440764/img_013.JPEG", "n01440764/img_016.JPEG",
                                       "n01440764/img_017.JPEG", "n01440764/img_027.JPEG",
                                       "n01440764/img_033.JPEG", "n01440764/img_034.JPEG",
                                       "n01440764/img_045.JPEG", "n01440764/img_047.JPEG"};
  EXPECT_EQ(lists.at("n01440764"), tench);
  const std::set<std::string> dog = {"n02085782/img_003.JPEG", "n02085936/img_005.JPEG",
                                     "n02086240/img_004.JPEG", "n02088094/img_000.JPEG",
                                     "n02088094/img_012.JPEG", "n02088364/img_026.JPEG",
                                     "n02106662/img_000.JPEG", "n02106662/img_004.JPEG",
                                     "n02106662/img_005.JPEG", "n02106662/img_011.JPEG"};
  EXPECT_EQ(lists.at("n02084071"), dog);
}

}  // namespace
}  // namespace mll::probe
