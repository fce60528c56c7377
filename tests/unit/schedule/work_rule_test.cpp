// schedule::work_rule: sub-groups under the memory budget and the load cap, cost-sized shards.
#include "mll/schedule/work_rule.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "mll/core/error.hpp"
#include "mll/schedule/makespan.hpp"
#include "mll/schedule/memory.hpp"
#include "test_paths.hpp"

namespace mll::schedule {
namespace {

std::vector<MakespanModel> openclip49() {
  return load_zoo_description(test::source_dir() + "/data/zoo/openclip49.json");
}

RuleOptions defaults(std::int64_t memory = 80'000'000'000) {
  RuleOptions o;
  o.memory = memory;
  return o;
}

double all_gflops(const std::vector<MakespanModel>& models) {
  double sum = 0.0;
  for (const auto& m : models) sum += m.gflops_per_image;
  return sum;
}

TEST(DistWorkRule, EveryShardStaysUnderTheFractionOfTheIdealMakespan) {
  const auto models = openclip49();
  for (int workers : {8, 64, 512, 1000}) {
    const auto rule = work_rule(models, workers, 150000, defaults());
    EXPECT_DOUBLE_EQ(rule.ideal_s, all_gflops(models) * 150000 / (100e3 * workers));
    for (const auto& s : rule.subgroups) {
      const double shard_s = static_cast<double>(s.unit) * s.gflops_per_image / 100e3;
      EXPECT_EQ(s.unit % 32, 0) << s.key;
      EXPECT_GE(s.unit, 32);
      EXPECT_LE(s.unit, 1024);
      // Only the minimum unit (one batch) may exceed the fraction.
      if (s.unit > 32) {
        EXPECT_LE(shard_s, kShardFraction * rule.ideal_s) << workers << " workers, " << s.key;
      }
    }
  }
}

TEST(DistWorkRule, UnitsOfOneGroupArePowerOfTwoMultiplesOfItsFinest) {
  const auto rule = work_rule(openclip49(), 512, 150000, defaults());
  std::map<std::string, std::int64_t> finest;
  for (const auto& s : rule.subgroups) {
    auto [it, inserted] = finest.emplace(s.key, s.unit);
    if (!inserted) it->second = std::min(it->second, s.unit);
  }
  for (const auto& s : rule.subgroups) {
    const std::int64_t ratio = s.unit / finest[s.key];
    EXPECT_EQ(s.unit % finest[s.key], 0) << s.key;
    EXPECT_EQ(ratio & (ratio - 1), 0) << s.key << ": " << s.unit;
  }
}

TEST(DistWorkRule, SubGroupsRespectTheMemoryBudgetAndTheLoadCap) {
  const auto models = openclip49();
  for (const std::int64_t memory :
       {std::int64_t{0}, std::int64_t{24'000'000'000}, std::int64_t{80'000'000'000}}) {
    for (int workers : {8, 64, 512}) {
      const auto rule = work_rule(models, workers, 150000, defaults(memory));
      EXPECT_DOUBLE_EQ(static_cast<double>(rule.load_cap),
                       std::round(kLoadFraction * rule.ideal_s * 2e9));
      EXPECT_EQ(rule.cap, memory > 0 ? std::min(memory, rule.load_cap) : rule.load_cap);
      std::set<std::size_t> seen;
      for (const auto& s : rule.subgroups) {
        if (memory > 0) {
          EXPECT_LE(s.footprint, memory) << s.key;
        }
        if (s.models.size() > 1) {
          EXPECT_LE(s.footprint, rule.cap) << s.key;
        }
        for (const std::size_t i : s.models) {
          EXPECT_TRUE(seen.insert(i).second) << "model " << i << " in two sub-groups";
          EXPECT_EQ(models[i].group_key, s.key);
        }
      }
      EXPECT_EQ(seen.size(), models.size());
    }
  }
}

// A makespan so short that the load cap rounds to nothing still caps (every model alone), and
// never drops the memory budget: three 10-billion-parameter models of almost no cost, one image.
TEST(DistWorkRule, ATinyLoadCapKeepsTheMemoryBudget) {
  std::vector<MakespanModel> models;
  for (int i = 0; i < 3; ++i)
    models.push_back({"big-" + std::to_string(i), "g", 10'000'000'000, 1e-9});
  const std::int64_t memory = 30'000'000'000;  // one model's 20 GB of float16 weights, not two
  const auto rule = work_rule(models, 1, 1, defaults(memory));
  EXPECT_EQ(rule.load_cap, 1);
  EXPECT_EQ(rule.cap, 1);
  ASSERT_EQ(rule.subgroups.size(), 3u);
  for (const auto& s : rule.subgroups) {
    EXPECT_EQ(s.models.size(), 1u);
    EXPECT_LE(s.footprint, memory);
  }
}

TEST(DistWorkRule, FewGpusKeepGroupsWholeManySplitThem) {
  const auto models = openclip49();
  EXPECT_EQ(work_rule(models, 8, 150000, defaults()).subgroups.size(), 9u);
  const auto at512 = work_rule(models, 512, 150000, defaults());
  EXPECT_GT(at512.subgroups.size(), 20u);
  // Most expensive first, and each group's part 0 holds its first model in zoo order.
  for (std::size_t k = 1; k < at512.subgroups.size(); ++k) {
    EXPECT_GE(at512.subgroups[k - 1].gflops_per_image, at512.subgroups[k].gflops_per_image);
  }
  std::map<std::string, std::size_t> first;
  for (std::size_t i = 0; i < models.size(); ++i) first.emplace(models[i].group_key, i);
  for (const auto& s : at512.subgroups) {
    if (s.part == 0) {
      EXPECT_EQ(s.models.front(), first[s.key]) << s.key;
    }
  }
}

TEST(DistWorkRule, FixedUnitSplitsOnlyByMemory) {
  auto o = defaults();
  o.fixed_unit = 1000;
  const auto rule = work_rule(openclip49(), 512, 150000, o);
  EXPECT_EQ(rule.load_cap, 0);
  EXPECT_EQ(rule.cap, o.memory);
  EXPECT_EQ(rule.subgroups.size(), 9u);  // every group fits 80 GB
  for (const auto& s : rule.subgroups) EXPECT_EQ(s.unit, 1000);
}

TEST(DistWorkRule, AModelOverTheBudgetIsAUsageErrorNamingIt) {
  const auto models = openclip49();
  try {
    work_rule(models, 64, 150000, defaults(8'000'000'000));
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("EVA02-E-14_laion2b_s4b_b115k"), std::string::npos)
        << e.what();
  }
  // Over the load cap but within the budget: a sub-group of its own.
  const auto rule = work_rule(models, 512, 150000, defaults());
  bool alone = false;
  for (const auto& s : rule.subgroups) {
    alone |= s.models.size() == 1 && models[s.models[0]].id == "EVA02-E-14_laion2b_s4b_b115k";
  }
  EXPECT_TRUE(alone);
}

TEST(DistWorkRule, UsesEachModelsImageSizeForItsWorkingSet) {
  std::vector<MakespanModel> models = {{"small", "k", 1000, 1.0, 224},
                                       {"large", "k", 1000, 1.0, 448}};
  auto o = defaults(0);
  o.fixed_unit = 32;  // no load cap: one sub-group
  const auto rule = work_rule(models, 1, 1000, o);
  ASSERT_EQ(rule.subgroups.size(), 1u);
  const auto large = model_memory("large", 1000, 2.0, 32, 448, 448, 2.0);
  EXPECT_EQ(rule.subgroups[0].footprint, 2000 + 2000 + large.working);
}

TEST(DistWorkRule, RejectsBadArguments) {
  const auto models = openclip49();
  EXPECT_THROW(work_rule(models, 0, 100, defaults()), UsageError);
  EXPECT_THROW(work_rule(models, 8, 0, defaults()), UsageError);
  EXPECT_THROW(work_rule({}, 8, 100, defaults()), UsageError);
  auto o = defaults();
  o.memory = -1;
  EXPECT_THROW(work_rule(models, 8, 100, o), UsageError);
  o = defaults();
  o.load_gbps = 0.0;
  EXPECT_THROW(work_rule(models, 8, 100, o), UsageError);
}

}  // namespace
}  // namespace mll::schedule
