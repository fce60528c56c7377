// Timing at ImageNet scale (docs/probe.md "Figures"). Skipped unless MLL_PROBE_BENCH is set:
//   MLL_PROBE_BENCH=1 probe_test --gtest_filter='ProbeBench.*'
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "mll/graph/graph.hpp"
#include "mll/h5/h5.hpp"
#include "mll/probe/sampling.hpp"
#include "probe_fixture.hpp"
#include "test_paths.hpp"

namespace mll::probe {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(ProbeBench, ImageNetScale) {
  if (std::getenv("MLL_PROBE_BENCH") == nullptr) GTEST_SKIP() << "set MLL_PROBE_BENCH=1";
  const int per_class = 100;
  const auto seeds = graph::read_seeds(test::source_dir() + "/data/imagenet/imagenet1k_wnids.txt",
                                       test::wordnet());
  const auto graph = graph::build_graph(test::wordnet(), seeds, {});

  test::ScratchDir dir;
  auto start = std::chrono::steady_clock::now();
  for (const auto& seed : seeds)
    test::make_class(dir / "train", graph::wnid_of(seed.offset), per_class);
  const double make_s = seconds_since(start);

  start = std::chrono::steady_clock::now();
  const auto source = scan_image_tree(dir / "train");
  const double scan_s = seconds_since(start);

  start = std::chrono::steady_clock::now();
  const auto probe = build_probe_set(graph, source, {75, 0});
  const double build_s = seconds_since(start);

  start = std::chrono::steady_clock::now();
  const auto hash = probe.content_hash();
  const double hash_s = seconds_since(start);

  start = std::chrono::steady_clock::now();
  {
    auto file = h5::File::create(dir / "probe.h5");
    write_probe(probe, file.root().create_group("probe"));
    file.close();
  }
  const double write_s = seconds_since(start);

  start = std::chrono::steady_clock::now();
  const auto file = h5::File::open(dir / "probe.h5", h5::Access::kReadOnly);
  const auto back = read_probe(file.root().open_group("probe"));
  const double read_s = seconds_since(start);

  start = std::chrono::steady_clock::now();
  const auto grown = grow_probe_set(probe, graph, graph, source, {75, 0});
  const double grow_s = seconds_since(start);
  EXPECT_TRUE(test::same_probe(grown, probe));

  const auto stats = compute_stats(probe);
  std::printf("graph: %zu nodes, %zu seeds x %d files\n", graph.size(), seeds.size(), per_class);
  std::printf("probe: %zu images, %zu memberships, %zu full nodes, %zu empty, max reuse %zu\n",
              stats.images, stats.memberships, stats.full_nodes, stats.empty_nodes,
              stats.max_reuse);
  std::printf("file size: %ju bytes\n",
              static_cast<std::uintmax_t>(std::filesystem::file_size(dir / "probe.h5")));
  std::printf(
      "make tree %.2f s, scan %.3f s, build %.3f s, hash %.3f s, write %.3f s, "
      "read+verify %.3f s, grow (no change) %.3f s\n",
      make_s, scan_s, build_s, hash_s, write_s, read_s, grow_s);
  EXPECT_EQ(back.content_hash(), hash);
}

}  // namespace
}  // namespace mll::probe
