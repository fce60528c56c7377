#include "mll/probe/probe_set.hpp"

#include <gtest/gtest.h>

#include "mll/core/error.hpp"
#include "mll/h5/h5.hpp"
#include "mll/probe/sampling.hpp"
#include "probe_fixture.hpp"
#include "test_paths.hpp"

namespace mll::probe {
namespace {

ProbeSet small_probe(const test::ScratchDir& dir) {
  test::make_tree(dir / "train", {{"n02085620", 12}, {"n02088364", 7}, {"n01440764", 20}});
  const auto graph = test::graph_of({"n02085620", "n02088364", "n01440764"});
  return build_probe_set(graph, scan_image_tree(dir / "train"), {5, 3});
}

TEST(ProbeFile, RoundTrip) {
  test::ScratchDir dir;
  const auto probe = small_probe(dir);
  {
    auto file = h5::File::create(dir / "p.h5");
    write_probe(probe, file.root().create_group("probe"));
    file.close();
  }
  const auto file = h5::File::open(dir / "p.h5", h5::Access::kReadOnly);
  const auto back = read_probe(file.root().open_group("probe"));
  EXPECT_TRUE(test::same_probe(probe, back));
  EXPECT_EQ(back.content_hash(), probe.content_hash());
  EXPECT_EQ(file.root().open_group("probe").attr_string("content_hash"), probe.content_hash());
}

TEST(ProbeFile, LargeSeedSurvives) {
  test::ScratchDir dir;
  auto probe = small_probe(dir);
  probe.seed = 0xfedcba9876543210ULL;  // above INT64_MAX: stored as int64 bits
  {
    auto file = h5::File::create(dir / "p.h5");
    write_probe(probe, file.root().create_group("probe"));
  }
  const auto file = h5::File::open(dir / "p.h5", h5::Access::kReadOnly);
  EXPECT_EQ(read_probe(file.root().open_group("probe")).seed, probe.seed);
}

TEST(ProbeFile, TamperedMembershipIsDetected) {
  test::ScratchDir dir;
  const auto probe = small_probe(dir);
  {
    auto file = h5::File::create(dir / "p.h5");
    write_probe(probe, file.root().create_group("probe"));
  }
  {
    auto file = h5::File::open(dir / "p.h5", h5::Access::kReadWrite);
    const auto group = file.root().open_group("probe");
    auto images = group.read<std::int32_t>("node_images");
    std::swap(images.front(), images.back());
    group.remove("node_images");
    group.write("node_images", images);
  }
  const auto file = h5::File::open(dir / "p.h5", h5::Access::kReadOnly);
  try {
    read_probe(file.root().open_group("probe"));
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("content hash mismatch"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("p.h5"), std::string::npos) << e.what();
  }
}

TEST(ProbeFile, InconsistentTablesAreDetected) {
  test::ScratchDir dir;
  const auto probe = small_probe(dir);
  {
    auto file = h5::File::create(dir / "p.h5");
    write_probe(probe, file.root().create_group("probe"));
  }
  {
    auto file = h5::File::open(dir / "p.h5", h5::Access::kReadWrite);
    const auto group = file.root().open_group("probe");
    auto images = group.read<std::int32_t>("node_images");
    images.back() = 1000000;
    group.remove("node_images");
    group.write("node_images", images);
  }
  const auto file = h5::File::open(dir / "p.h5", h5::Access::kReadOnly);
  EXPECT_THROW(read_probe(file.root().open_group("probe")), DataError);
}

TEST(ProbeFile, OtherSchemaIsRefused) {
  test::ScratchDir dir;
  const auto probe = small_probe(dir);
  {
    auto file = h5::File::create(dir / "p.h5");
    const auto group = file.root().create_group("probe");
    write_probe(probe, group);
    group.set_attr("schema_version", std::int64_t{99});
  }
  const auto file = h5::File::open(dir / "p.h5", h5::Access::kReadOnly);
  EXPECT_THROW(read_probe(file.root().open_group("probe")), DataError);
  EXPECT_THROW(read_probe(file.root()), DataError);  // no probe attributes at all
}

}  // namespace
}  // namespace mll::probe
