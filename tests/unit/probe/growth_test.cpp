#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "mll/core/error.hpp"
#include "mll/probe/sampling.hpp"
#include "probe_fixture.hpp"
#include "test_paths.hpp"

namespace mll::probe {
namespace {

using test::graph_of;
using test::make_tree;
using test::membership;

class ProbeGrowth : public ::testing::Test {
 protected:
  void SetUp() override {
    make_tree(dir_ / "train", {{"n02085620", 30},
                               {"n02085782", 4},
                               {"n02088364", 40},
                               {"n02106662", 15},
                               {"n01440764", 60},
                               {"n01443537", 11}});
    old_graph_ =
        graph_of({"n02085620", "n02085782", "n02088364", "n02106662", "n01440764", "n01443537"});
    old_ = build_probe_set(old_graph_, scan_image_tree(dir_ / "train"), options_);
    // New seeds: two more dogs (one under an existing branch) and a cat.
    make_tree(dir_ / "train", {{"n02085936", 12}, {"n02099601", 9}, {"n02123045", 20}});
    new_graph_ = graph_of({"n02085620", "n02085782", "n02088364", "n02106662", "n01440764",
                           "n01443537", "n02085936", "n02099601", "n02123045"});
  }

  test::ScratchDir dir_;
  ProbeOptions options_{10, 5};
  graph::Graph old_graph_, new_graph_;
  ProbeSet old_;
};

TEST_F(ProbeGrowth, KeepsOldIdsAndUnchangedNodes) {
  const auto source = scan_image_tree(dir_ / "train");
  const auto grown = grow_probe_set(old_, old_graph_, new_graph_, source, options_);
  grown.validate();
  EXPECT_EQ(grown.graph_hash, new_graph_.content_hash());
  EXPECT_EQ(grown.node_count(), new_graph_.size());
  ASSERT_GE(grown.image_count(), old_.image_count());
  EXPECT_TRUE(
      std::equal(old_.image_paths.begin(), old_.image_paths.end(), grown.image_paths.begin()));
  EXPECT_TRUE(
      std::equal(old_.image_sizes.begin(), old_.image_sizes.end(), grown.image_sizes.begin()));
  EXPECT_GT(grown.image_count(), old_.image_count());
  std::set<std::string> distinct(grown.image_paths.begin(), grown.image_paths.end());
  EXPECT_EQ(distinct.size(), grown.image_count());

  // Nodes that gained no descendant seed keep exactly their images (and so their ids).
  std::set<std::string> new_seeds = {"n02085936", "n02099601", "n02123045"};
  const auto before = membership(old_, old_graph_);
  const auto after = membership(grown, new_graph_);
  std::size_t kept = 0, changed = 0;
  for (std::size_t v = 0; v < old_graph_.size(); ++v) {
    const auto& wnid = old_graph_.node(v).wnid;
    const auto nv = new_graph_.index_of(wnid);
    bool touched = false;
    for (const auto d : new_graph_.descendants(nv)) {
      touched = touched || new_seeds.count(new_graph_.node(static_cast<std::size_t>(d)).wnid);
    }
    if (touched) {
      changed += after.at(wnid) != before.at(wnid);
      continue;
    }
    EXPECT_EQ(after.at(wnid), before.at(wnid)) << old_graph_.node(v).name;
    EXPECT_EQ(grown.images_of(static_cast<std::size_t>(nv)), old_.images_of(v));
    ++kept;
  }
  EXPECT_GE(kept, 10u);
  EXPECT_GE(changed, 1u);  // toy_dog.n.01 now shares its images with the Maltese

  // The grown set equals a fresh build up to the numbering of the images.
  const auto fresh = build_probe_set(new_graph_, source, options_);
  EXPECT_EQ(membership(fresh, new_graph_), after);
}

TEST_F(ProbeGrowth, NothingNewGivesTheSameProbeSet) {
  test::ScratchDir dir;
  make_tree(dir / "t", {{"n02085620", 30},
                        {"n02085782", 4},
                        {"n02088364", 40},
                        {"n02106662", 15},
                        {"n01440764", 60},
                        {"n01443537", 11}});
  const auto source = scan_image_tree(dir / "t");
  const auto old = build_probe_set(old_graph_, source, options_);
  const auto again = grow_probe_set(old, old_graph_, old_graph_, source, options_);
  EXPECT_TRUE(test::same_probe(old, again));
}

TEST_F(ProbeGrowth, GrowingTwiceEqualsGrowingOnce) {
  const auto source = scan_image_tree(dir_ / "train");
  const auto once = grow_probe_set(old_, old_graph_, new_graph_, source, options_);
  const auto twice = grow_probe_set(once, new_graph_, new_graph_, source, options_);
  EXPECT_TRUE(test::same_probe(once, twice));
}

TEST_F(ProbeGrowth, RefusesOtherOptions) {
  const auto source = scan_image_tree(dir_ / "train");
  EXPECT_THROW(grow_probe_set(old_, old_graph_, new_graph_, source, {11, 5}), UsageError);
  EXPECT_THROW(grow_probe_set(old_, old_graph_, new_graph_, source, {10, 6}), UsageError);
}

TEST_F(ProbeGrowth, RefusesAGraphThatLostANode) {
  const auto source = scan_image_tree(dir_ / "train");
  // Wrong old graph for this probe set.
  EXPECT_THROW(grow_probe_set(old_, new_graph_, new_graph_, source, options_), DataError);
  // A "new" graph without the goldfish (and its images removed so the source is consistent).
  std::filesystem::remove_all(dir_ / "train/n01443537");
  const auto smaller = graph_of({"n02085620", "n02085782", "n02088364", "n02106662", "n01440764",
                                 "n02085936", "n02099601", "n02123045"});
  try {
    grow_probe_set(old_, old_graph_, smaller, scan_image_tree(dir_ / "train"), options_);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("n01443537"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("missing from the new graph"), std::string::npos);
  }
}

TEST_F(ProbeGrowth, RefusesRemovedOrChangedImages) {
  const auto& victim = old_.image_paths.front();
  std::filesystem::remove(dir_ / ("train/" + victim));
  try {
    grow_probe_set(old_, old_graph_, new_graph_, scan_image_tree(dir_ / "train"), options_);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(victim), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
  }
  std::ofstream(dir_ / ("train/" + victim)) << std::string(100, 'y');
  try {
    grow_probe_set(old_, old_graph_, new_graph_, scan_image_tree(dir_ / "train"), options_);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("changed size"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mll::probe
