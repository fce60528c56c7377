#include "mll/schedule/memory.hpp"

#include <gtest/gtest.h>

#include "mll/core/error.hpp"

namespace mll::schedule {
namespace {

std::vector<ModelMemory> sized(const std::vector<std::int64_t>& weights, std::int64_t working) {
  std::vector<ModelMemory> out;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    out.push_back(ModelMemory{"m" + std::to_string(i), weights[i], working});
  }
  return out;
}

TEST(MemoryTest, TheEstimateIsWeightsPlusAScaledInputBatch) {
  const auto m = model_memory("vit", 151'000'000, 2.0, 32, 224, 224, 2.0);
  EXPECT_EQ(m.weights, 302'000'000);
  EXPECT_EQ(m.working, static_cast<std::int64_t>(32 * 3 * 224 * 224 * 2 * kActivationFactor));
  EXPECT_EQ(m.footprint(), m.weights + m.working);
}

TEST(MemoryTest, AGroupNeedsItsWeightsAndOnlyTheLargestWorkingSet) {
  std::vector<ModelMemory> g = {{"a", 100, 10}, {"b", 200, 30}, {"c", 50, 20}};
  EXPECT_EQ(group_footprint(g), 350 + 30);
}

TEST(MemoryTest, AGroupThatFitsOrNoBudgetStaysWhole) {
  const auto g = sized({100, 100, 100}, 10);
  const std::vector<std::vector<std::size_t>> whole = {{0, 1, 2}};
  EXPECT_EQ(split_group(g, 0), whole);
  EXPECT_EQ(split_group(g, 310), whole);
}

TEST(MemoryTest, SixEqualModelsUnderABudgetForTwoMakeThreeSubGroupsInZooOrder) {
  const auto g = sized({100, 100, 100, 100, 100, 100}, 10);
  const auto parts = split_group(g, 210);
  const std::vector<std::vector<std::size_t>> expected = {{0, 1}, {2, 3}, {4, 5}};
  EXPECT_EQ(parts, expected);
  for (const auto& p : parts) {
    std::vector<ModelMemory> members;
    for (auto i : p) members.push_back(g[i]);
    EXPECT_LE(group_footprint(members), 210);
  }
}

TEST(MemoryTest, SmallModelsFillTheGapsLeftByLargeOnes) {
  // 300 + 100 fit together, as do 300 + 100: two sub-groups, not three.
  const auto g = sized({100, 300, 300, 100}, 0);
  const auto parts = split_group(g, 400);
  const std::vector<std::vector<std::size_t>> expected = {{0, 1}, {2, 3}};
  EXPECT_EQ(parts, expected);
}

TEST(MemoryTest, AModelLargerThanTheBudgetIsAUsageErrorNamingIt) {
  const auto g = sized({100, 500, 100}, 10);
  try {
    split_group(g, 300);
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("model 'm1'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--memory"), std::string::npos) << e.what();
  }
}

TEST(MemoryTest, SizesParseWithDecimalAndBinaryUnits) {
  EXPECT_EQ(parse_bytes("4GiB"), 4LL << 30);
  EXPECT_EQ(parse_bytes("24GB"), 24'000'000'000LL);
  EXPECT_EQ(parse_bytes("512 MiB"), 512LL << 20);
  EXPECT_EQ(parse_bytes("1.5g"), 1'500'000'000LL);
  EXPECT_EQ(parse_bytes("0"), 0);
  EXPECT_EQ(parse_bytes("1000"), 1000);
  for (const char* bad : {"", "GiB", "4 parsecs", "-1GB", "nan", "4EiB", "1e19", "5e6TB",
                          "5000000TiB", "inf", "0.4", "0.4b"}) {
    EXPECT_THROW(parse_bytes(bad), UsageError) << bad;
  }
  EXPECT_EQ(parse_bytes("1e18"), 1'000'000'000'000'000'000LL);
}

TEST(MemoryTest, BytesPrintWithThreeSignificantDigits) {
  EXPECT_EQ(format_bytes(37'800'000'000LL), "37.8 GB");
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1'234'000), "1.23 MB");
  EXPECT_EQ(format_bytes(150'000'000'000LL), "150 GB");
}

}  // namespace
}  // namespace mll::schedule
