// The makespan planner: hand-computed schedules, the round-robin baseline, the shipped
// 49-model description and the figures the issue states.
#include "mll/schedule/makespan.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "mll/core/error.hpp"
#include "test_paths.hpp"

namespace mll::schedule {
namespace {

// A: group "a", 100 GFLOPs/image, 1e9 params (2 GB); B and C share group "b" (60 GFLOPs/image,
// 2 GB together).
std::vector<MakespanModel> three_models() {
  return {{"A", "a", 1'000'000'000, 100.0},
          {"B", "b", 500'000'000, 50.0},
          {"C", "b", 500'000'000, 10.0}};
}

MakespanOptions small_options() {
  MakespanOptions o;
  o.gpus = 2;
  o.images = 400;
  o.unit = 100;
  o.gpu_tflops = 1.0;  // 1000 GFLOP/s
  o.load_gbps = 1.0;   // 2 GB: 2 s
  return o;
}

std::string openclip49() { return test::source_dir() + "/data/zoo/openclip49.json"; }

MakespanResult plan49(int gpus, std::int64_t unit = 1024, const std::string& cost = "image") {
  MakespanOptions o;
  o.gpus = gpus;
  o.images = 150000;
  o.unit = unit;
  return simulate(load_zoo_description(openclip49(), cost), o);
}

TEST(DistPlan, TwoGpusThreeModelsByHand) {
  const auto p = simulate(three_models(), small_options());
  ASSERT_EQ(p.groups.size(), 2u);
  EXPECT_EQ(p.groups[0].key, "a");  // most expensive first
  EXPECT_DOUBLE_EQ(p.groups[1].gflops_per_image, 60.0);
  EXPECT_DOUBLE_EQ(p.groups[0].load_s, 2.0);
  EXPECT_DOUBLE_EQ(p.groups[1].load_s, 2.0);
  EXPECT_EQ(p.groups[0].shards, 4);
  EXPECT_DOUBLE_EQ(p.groups[0].shard_s, 10.0);
  EXPECT_DOUBLE_EQ(p.groups[1].shard_s, 6.0);
  EXPECT_DOUBLE_EQ(p.total_compute_s, 64.0);  // 400 x 160 / 1000
  EXPECT_DOUBLE_EQ(p.ideal_s, 32.0);
  // Both workers load a (2 s) and run its 4 shards (2 x 10 s each), then load b (2 s) and run
  // its 4 shards (2 x 6 s each): 2 + 20 + 2 + 12 = 36 s.
  EXPECT_DOUBLE_EQ(p.dynamic.makespan_s, 36.0);
  EXPECT_DOUBLE_EQ(p.dynamic.efficiency, 64.0 / 72.0);
  for (const auto& gpu : p.dynamic.gpus) {
    EXPECT_EQ(gpu.loads, 2);
    EXPECT_EQ(gpu.units, 4);
    EXPECT_DOUBLE_EQ(gpu.load_s, 4.0);
    EXPECT_DOUBLE_EQ(gpu.compute_s, 32.0);
  }
  // Round-robin: GPU 0 runs A (2 s load + 40 s) and C (1 s + 4 s) = 47 s; GPU 1 runs B
  // (1 s + 20 s) = 21 s.
  EXPECT_DOUBLE_EQ(p.round_robin.makespan_s, 47.0);
  EXPECT_DOUBLE_EQ(p.round_robin.gpus[0].busy_s, 47.0);
  EXPECT_DOUBLE_EQ(p.round_robin.gpus[1].busy_s, 21.0);
  EXPECT_DOUBLE_EQ(p.round_robin.efficiency, 64.0 / 94.0);
  EXPECT_DOUBLE_EQ(p.round_robin.largest_unit_s, 42.0);
}

TEST(DistPlan, DecodeCapSlowsCheapGroupsOnly) {
  auto o = small_options();
  o.decode_cores_per_gpu = 1.0;
  o.decode_images_per_core = 10.0;  // 100 images: 10 s
  const auto p = simulate(three_models(), o);
  EXPECT_FALSE(p.groups[0].decode_limited);  // 10 s compute = 10 s decode
  EXPECT_TRUE(p.groups[1].decode_limited);   // 6 s compute < 10 s decode
  // a: 2 + 2 x 10; b: 2 + 2 x 10 (decode-bound) = 44 s.
  EXPECT_DOUBLE_EQ(p.dynamic.makespan_s, 44.0);
  EXPECT_DOUBLE_EQ(p.dynamic.total_decode_stall_s(), 4 * 4.0);
  // Round-robin decodes per model: GPU 0 = 2 + 40 + 1 + max(4, 40) = 83 s.
  EXPECT_DOUBLE_EQ(p.round_robin.makespan_s, 83.0);
  EXPECT_DOUBLE_EQ(p.round_robin.gpus[1].busy_s, 41.0);
  ASSERT_FALSE(p.limits.empty());
  bool named_decode = false;
  for (const auto& line : p.limits) named_decode |= line.rfind("decode", 0) == 0;
  EXPECT_TRUE(named_decode);
}

TEST(DistPlan, PartialLastShardAndOneGpu) {
  auto o = small_options();
  o.gpus = 1;
  o.images = 250;  // shards of 100, 100, 50
  const auto p = simulate(three_models(), o);
  EXPECT_EQ(p.groups[0].shards, 3);
  // One worker: load a, 250 x 100 / 1000 = 25 s; load b, 250 x 60 / 1000 = 15 s.
  EXPECT_DOUBLE_EQ(p.dynamic.makespan_s, 2.0 + 25.0 + 2.0 + 15.0);
  // Round-robin loads per model: 2 + 25 + 1 + 12.5 + 1 + 2.5.
  EXPECT_DOUBLE_EQ(p.round_robin.makespan_s, 44.0);
}

TEST(DistPlan, MoreGpusThanShardsLeavesGpusIdle) {
  auto o = small_options();
  o.gpus = 16;  // 8 shards in all
  const auto p = simulate(three_models(), o);
  int idle = 0;
  for (const auto& gpu : p.dynamic.gpus) idle += gpu.units == 0 ? 1 : 0;
  EXPECT_EQ(idle, 8);
  EXPECT_DOUBLE_EQ(p.dynamic.makespan_s, 12.0);  // one a shard with its load
  EXPECT_DOUBLE_EQ(p.dynamic.largest_unit_s, 12.0);
}

TEST(DistPlan, RejectsBadOptions) {
  auto o = small_options();
  o.gpus = 0;
  EXPECT_THROW(simulate(three_models(), o), UsageError);
  o = small_options();
  o.unit = -1;
  EXPECT_THROW(simulate(three_models(), o), UsageError);
  o = small_options();
  o.memory = -1;
  EXPECT_THROW(simulate(three_models(), o), UsageError);
  o = small_options();
  o.gpu_tflops = 0.0;
  EXPECT_THROW(simulate(three_models(), o), UsageError);
  o = small_options();
  o.load_gbps = -1.0;
  EXPECT_THROW(simulate(three_models(), o), UsageError);
  EXPECT_THROW(simulate({}, small_options()), UsageError);
}

TEST(DistPlan, SidecarsGroupByPreprocessingAndNeedCosts) {
  zoo::ModelSpec a, b, c;
  a.id = "a";
  b.id = "b";
  c.id = "c";
  for (auto* s : {&a, &b, &c}) {
    s->params = 1000;
    s->gflops_per_image = 1.0;
  }
  c.image_size = 336;
  const auto models = makespan_models({a, b, c});
  EXPECT_EQ(models[0].group_key, models[1].group_key);
  EXPECT_NE(models[0].group_key, models[2].group_key);
  b.mean[0] = 0.5f;
  EXPECT_NE(preprocess_group_key(a), preprocess_group_key(b));
  a.gflops_per_image = 0.0;
  EXPECT_THROW(makespan_models({a}), DataError);
}

TEST(DistPlan, DescriptionErrorsNameTheFile) {
  test::ScratchDir dir;
  const std::string path = dir / "bad.json";
  std::ofstream(path) << R"({"models": [{"id": "x", "params": 10}]})";
  try {
    load_zoo_description(path);
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("gflops_per_image"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  std::ofstream(path) << R"({"models": [{"id": "x", "params": 10, "gflops_per_image": 1},
                                        {"id": "x", "params": 10, "gflops_per_image": 1}]})";
  EXPECT_THROW(load_zoo_description(path), DataError);
  EXPECT_THROW(load_zoo_description(path, "flops"), UsageError);
  EXPECT_THROW(load_zoo_description(dir / "missing.json"), DataError);
}

TEST(DistPlan, ShippedDescriptionHasThePapersModelsAndFigures) {
  const auto image = load_zoo_description(openclip49(), "image");
  const auto pair = load_zoo_description(openclip49(), "pair");
  ASSERT_EQ(image.size(), 49u);
  EXPECT_EQ(image.front().id, "RN50_openai");  // MLL's order
  const auto find = [](const std::vector<MakespanModel>& ms, const std::string& id) {
    for (const auto& m : ms) {
      if (m.id == id) return m;
    }
    return MakespanModel{};
  };
  EXPECT_DOUBLE_EQ(find(image, "ViT-B-32_openai").gflops_per_image, 8.82);
  EXPECT_DOUBLE_EQ(find(pair, "ViT-B-32_openai").gflops_per_image, 14.78);
  EXPECT_DOUBLE_EQ(find(pair, "EVA02-E-14_laion2b_s4b_b115k").gflops_per_image, 2311.42);
  EXPECT_DOUBLE_EQ(find(image, "EVA02-E-14_laion2b_s4b_b115k").gflops_per_image, 2264.33);
  EXPECT_EQ(find(image, "EVA02-E-14_laion2b_s4b_b115k").params, 4'704'590'000);
  // The squash-resized DFN model and the SigLIP-normalised NLLB model are groups of their own.
  const auto dfn = find(image, "ViT-H-14-378-quickgelu_dfn5b");
  const auto siglip = find(image, "nllb-clip-base-siglip_v1");
  for (const auto& m : image) {
    if (m.id != dfn.id) {
      EXPECT_NE(m.group_key, dfn.group_key) << m.id;
    }
    if (m.id != siglip.id) {
      EXPECT_NE(m.group_key, siglip.group_key) << m.id;
    }
  }
  EXPECT_EQ(find(image, "ViT-B-32_openai").group_key,
            find(image, "EVA02-E-14_laion2b_s4b_b115k").group_key);
}

// The issue's estimate ("0.47 at 8 GPUs and 0.08 at 64, because EVA02-E-14 alone is ~20% of
// the work") uses whole models as units with open_clip's FLOPs (B) column and no load time.
TEST(DistPlan, RoundRobinReproducesTheIssuesEstimate) {
  MakespanOptions o;
  o.images = 150000;
  o.load_gbps = 1e12;  // loading is free
  const auto pair = load_zoo_description(openclip49(), "pair");
  o.gpus = 8;
  EXPECT_NEAR(simulate(pair, o).round_robin.efficiency, 0.47, 0.005);
  o.gpus = 64;
  EXPECT_NEAR(simulate(pair, o).round_robin.efficiency, 0.078, 0.002);
  // With the image tower only (what a probe image costs), EVA02-E-14 is 23% of the work and
  // round-robin is worse still.
  const auto image = load_zoo_description(openclip49(), "image");
  o.gpus = 8;
  EXPECT_NEAR(simulate(image, o).round_robin.efficiency, 0.422, 0.002);
  o.gpus = 64;
  EXPECT_NEAR(simulate(image, o).round_robin.efficiency, 0.0676, 0.001);
}

TEST(DistPlan, DynamicReachesNinetyPercentAt64Gpus) {
  const auto p = plan49(64);
  EXPECT_GE(p.dynamic.efficiency, 0.90) << makespan_report(p);
  EXPECT_LT(p.round_robin.efficiency, 0.10);
}

// More GPUs never make the dynamic schedule slower at the scales the planner is asked about.
TEST(DistPlan, MoreGpusNeverSlowerForDynamic) {
  const auto models = load_zoo_description(openclip49());
  MakespanOptions o;
  o.images = 150000;
  double previous = 0.0;
  for (int gpus : {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}) {
    o.gpus = gpus;
    const double makespan = simulate(models, o).dynamic.makespan_s;
    if (gpus > 1) {
      EXPECT_LE(makespan, previous * (1 + 1e-12)) << gpus << " GPUs";
    }
    previous = makespan;
  }
  auto small = small_options();
  previous = 0.0;
  for (int gpus = 1; gpus <= 20; ++gpus) {
    small.gpus = gpus;
    const double makespan = simulate(three_models(), small).dynamic.makespan_s;
    if (gpus > 1) {
      EXPECT_LE(makespan, previous) << gpus << " GPUs";
    }
    previous = makespan;
  }
}

// Greedy list scheduling is not monotone in the worker count one GPU at a time (Graham's
// anomaly): for the 49 models x 150k images, 144 GPUs finish later than 143 (169.4 s against
// 152.9 s) because the extra worker changes which workers are free when the last shards of the
// big 224-px group are handed out. What greedy scheduling does guarantee is that one more GPU
// costs no more than one indivisible unit (a shard with its group's load), which is checked here.
TEST(DistPlan, OneMoreGpuCostsAtMostOneUnit) {
  const auto models = load_zoo_description(openclip49());
  MakespanOptions o;
  o.images = 150000;
  o.gpus = 1;
  auto before = simulate(models, o);
  for (int gpus = 2; gpus <= 200; ++gpus) {
    o.gpus = gpus;
    const auto after = simulate(models, o);
    EXPECT_LE(after.dynamic.makespan_s, before.dynamic.makespan_s + after.dynamic.largest_unit_s)
        << gpus << " GPUs";
    before = after;
  }
}

// The acceptance figures: the default rule (cost-sized shards, sub-groups under the load cap and
// 80 GB) on the paper's zoo. The simulation is deterministic, so the figures are exact.
TEST(DistPlan, DefaultRuleReachesTheTargetsAt64And512Gpus) {
  const auto models = load_zoo_description(openclip49());
  MakespanOptions o;
  o.images = 150000;
  o.gpus = 512;
  const auto at512 = simulate(models, o);
  EXPECT_GE(at512.dynamic.efficiency, 0.90) << makespan_report(at512);
  o.gpus = 64;
  const auto at64 = simulate(models, o);
  EXPECT_GE(at64.dynamic.efficiency, 0.93) << makespan_report(at64);
  o.gpus = 8;
  EXPECT_GE(simulate(models, o).dynamic.efficiency, 0.98);
  // Fixed 1,024-image shards of whole groups stay where they were (shard granularity at 512).
  o.gpus = 512;
  o.unit = 1024;
  EXPECT_LT(simulate(models, o).dynamic.efficiency, 0.35);
}

TEST(DistPlan, MemoryPerGpuIsTheLargestSubGroupHeldAndPrefetchStaysWithinTheBudget) {
  const auto models = load_zoo_description(openclip49());
  for (const std::int64_t memory : {std::int64_t{12'000'000'000}, std::int64_t{80'000'000'000}}) {
    for (int gpus : {8, 64, 512}) {
      MakespanOptions o;
      o.images = 150000;
      o.gpus = gpus;
      o.memory = memory;
      std::int64_t largest = 0;
      const auto plain = simulate(models, o);
      for (const auto& g : plain.groups) largest = std::max(largest, g.footprint);
      EXPECT_EQ(plain.dynamic.memory_max(), largest) << gpus << " GPUs";
      EXPECT_LE(largest, memory);
      o.prefetch = true;
      const auto ahead = simulate(models, o);
      for (const auto& gpu : ahead.dynamic.gpus) EXPECT_LE(gpu.memory, memory) << gpus << " GPUs";
      // At 512 GPUs workers move between sub-groups near the end and some loads overlap.
      if (gpus == 512) {
        EXPECT_GT(ahead.dynamic.total_hidden_load_s(), 0.0);
      }
      EXPECT_GE(ahead.dynamic.efficiency, 0.9) << gpus << " GPUs";
    }
  }
}

TEST(DistPlan, AModelOverTheMemoryBudgetIsAUsageErrorNamingIt) {
  MakespanOptions o;
  o.gpus = 64;
  o.memory = 8'000'000'000;  // the only model over it: EVA02-E-14 (9.4 GB of weights)
  try {
    simulate(load_zoo_description(openclip49()), o);
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("EVA02-E-14_laion2b_s4b_b115k"), std::string::npos)
        << e.what();
  }
}

TEST(DistPlan, OnlyTheFirstSubGroupOfAGroupDecodes) {
  // B and C share group "b" but do not fit 2.5 GB together (1.8 GB of weights each + a batch):
  // B (part 0) decodes, C reads its crops.
  const std::vector<MakespanModel> models = {{"A", "a", 1'000'000'000, 100.0},
                                             {"B", "b", 900'000'000, 50.0},
                                             {"C", "b", 900'000'000, 10.0}};
  auto o = small_options();
  o.memory = 2'500'000'000;
  o.decode_cores_per_gpu = 1.0;
  o.decode_images_per_core = 10.0;  // 100 images: 10 s
  const auto p = simulate(models, o);
  ASSERT_EQ(p.groups.size(), 3u);
  EXPECT_EQ(p.preprocess_groups, 2u);
  EXPECT_EQ(p.groups[1].models, std::vector<std::string>{"B"});
  EXPECT_EQ(p.groups[1].part, 0);
  EXPECT_TRUE(p.groups[1].decode_limited);
  EXPECT_EQ(p.groups[2].models, std::vector<std::string>{"C"});
  EXPECT_EQ(p.groups[2].part, 1);
  EXPECT_FALSE(p.groups[2].decode_limited);
  EXPECT_DOUBLE_EQ(p.groups[2].shard_s, 1.0);
}

TEST(DistPlan, JsonCarriesBothStrategies) {
  const auto p = simulate(three_models(), small_options());
  const auto doc = nlohmann::json::parse(makespan_json(p));
  EXPECT_DOUBLE_EQ(doc["dynamic"]["makespan_s"].get<double>(), 36.0);
  EXPECT_DOUBLE_EQ(doc["static_round_robin"]["makespan_s"].get<double>(), 47.0);
  EXPECT_EQ(doc["dynamic"]["busy_s"].size(), 2u);
  EXPECT_EQ(doc["groups"].size(), 2u);
  EXPECT_EQ(doc["options"]["gpus"].get<int>(), 2);
  EXPECT_EQ(doc["options"]["unit_rule"], "fixed");
  EXPECT_EQ(doc["options"]["memory"].get<std::int64_t>(), 80'000'000'000);
  EXPECT_FALSE(doc["options"]["prefetch"].get<bool>());
  EXPECT_EQ(doc["groups"][0]["unit"].get<std::int64_t>(), 100);
  EXPECT_EQ(doc["groups"][0]["part"].get<int>(), 0);
  EXPECT_GT(doc["memory_per_gpu"].get<std::int64_t>(), 2'000'000'000);
  EXPECT_TRUE(doc.contains("subgroup_cap"));
  EXPECT_TRUE(doc.contains("load_cap"));
  EXPECT_TRUE(doc["dynamic"].contains("hidden_load_s"));
}

}  // namespace
}  // namespace mll::schedule
