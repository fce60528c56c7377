// schedule::Scheduler: the policy shared by the MPI coordinator and `mll plan`.
#include "mll/schedule/scheduler.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "mll/core/error.hpp"

namespace mll::schedule {
namespace {

TEST(DistScheduler, FreshWorkerTakesTheLongestGroupAndKeepsItWhileItHasShards) {
  // group 0: 2 shards of work 1; group 1: 2 shards of work 5.
  Scheduler s({0, 0, 1, 1}, {1.0, 1.0, 5.0, 5.0});
  EXPECT_EQ(s.remaining(), 4u);
  EXPECT_EQ(s.next(-1), 2u);  // longest group first
  EXPECT_EQ(s.next(1), 3u);   // keeps group 1
  EXPECT_EQ(s.next(1), 0u);   // group 1 exhausted: longest remaining is group 0
  EXPECT_EQ(s.next(0), 1u);
  EXPECT_FALSE(s.next(0).has_value());
  EXPECT_EQ(s.remaining(), 0u);
}

TEST(DistScheduler, LongestFirstUsesRemainingWorkNotInitialWork) {
  // group 0: 6 x 1; group 1: 5 x 1. After one shard of group 0 its holder faces 5 + 1 in flight,
  // 3 per worker with a second one: group 1 (5) goes first.
  Scheduler s({0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1}, std::vector<double>(11, 1.0));
  EXPECT_EQ(s.next(-1), 0u);
  EXPECT_EQ(s.next(-1), 6u);
  EXPECT_EQ(s.next(-1), 1u);
}

TEST(DistScheduler, ALongShardStartsBeforeShortOnes) {
  // group 0: 3 x 2 = 6; group 1: one shard of 5. Group 1 would end last if it started last
  // (5 + 5 > 6 + 2): the longest piece goes first, as in longest-processing-time scheduling.
  Scheduler s({0, 0, 0, 1}, {2.0, 2.0, 2.0, 5.0});
  EXPECT_EQ(s.next(-1), 3u);
  EXPECT_EQ(s.next(-1), 0u);
}

TEST(DistScheduler, TiesGoToTheLowerGroupAndShardsComeInIndexOrder) {
  Scheduler s({1, 0, 1, 0}, {1.0, 1.0, 1.0, 1.0});
  EXPECT_EQ(s.next(-1), 1u);
  EXPECT_EQ(s.next(-1), 0u);  // group 0 has 1 left, group 1 has 2
  EXPECT_EQ(s.next(-1), 3u);  // 1 left each: the lower group
  EXPECT_EQ(s.next(-1), 2u);
}

TEST(DistScheduler, DropGroupRemovesItsRemainingShards) {
  Scheduler s({0, 0, 1}, {3.0, 3.0, 1.0});
  EXPECT_EQ(s.next(-1), 0u);
  EXPECT_EQ(s.drop_group(0), 1u);
  EXPECT_EQ(s.remaining(), 1u);
  EXPECT_EQ(s.next(0), 2u);  // the loaded group has nothing left
  EXPECT_EQ(s.drop_group(0), 0u);
  EXPECT_EQ(s.drop_group(7), 0u);
  EXPECT_FALSE(s.next(-1).has_value());
}

TEST(DistScheduler, FreshWorkersSpreadOverGroupsByWorkPerHolder) {
  // group 0: 8 shards of 1; group 1: 5 shards of 1. A worker goes where (work faced, with one
  // shard in flight per holder) / (holders + 1) + the next shard is largest: 8 + 1 > 5 + 1,
  // then 5 + 1 (group 1, alone) > (7 + 1) / 2 + 1, then 5 > (4 + 1) / 2 + 1.
  Scheduler s({0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1}, std::vector<double>(13, 1.0));
  EXPECT_EQ(s.next(-1), 0u);
  EXPECT_EQ(s.next(-1), 8u);
  EXPECT_EQ(s.next(-1), 1u);
}

TEST(DistScheduler, SwitchCostsSendMoreWorkersToExpensiveLoads) {
  // Two groups of equal work (10 shards of 1); joining group 0 costs 4, group 1 nothing. Each
  // newcomer goes where (work left + switches owed + a shard in flight per holder + its own
  // switch) / (holders + 1) + the next shard is largest.
  std::vector<int> groups(20, 0);
  for (std::size_t i = 10; i < 20; ++i) groups[i] = 1;
  Scheduler s(groups, std::vector<double>(20, 1.0), {4.0, 0.0});
  EXPECT_EQ(s.next(-1), 0u);   // 10 + 4 + 1 > 10 + 1
  EXPECT_EQ(s.next(-1), 10u);  // (9 + 4 + 1 + 4) / 2 + 1 = 10 < 11
  EXPECT_EQ(s.next(-1), 1u);   // 10 > (9 + 1) / 2 + 1 = 6
  EXPECT_EQ(s.next(-1), 2u);   // (8 + 2 x 4 + 2 + 4) / 3 + 1 = 8.3 > 6
  // A holder back for a second shard has paid its switch: group 0 owes less.
  EXPECT_EQ(s.next(0), 3u);
  EXPECT_DOUBLE_EQ(s.remaining_per_holder(0), (6.0 + 2 * 4.0) / 3.0);
  EXPECT_DOUBLE_EQ(s.remaining_per_holder(1), 9.0);
}

TEST(DistScheduler, ANewcomerSkipsAGroupItsHoldersFinishFirst) {
  // group 0: 3 shards of 1 and a switch cost of 5; group 1: 1 shard of 0.5, no cost.
  Scheduler s({0, 0, 0, 1}, {1.0, 1.0, 1.0, 0.5}, {5.0, 0.0});
  EXPECT_EQ(s.next(-1), 0u);  // (3 + 5) > 0.5
  EXPECT_EQ(s.next(0), 1u);   // the holder has paid: group 0 owes 1 more shard
  // A newcomer would need 5 + 1 before its first shard ends; the holder is done in 1.
  EXPECT_EQ(s.next(-1), 3u);
  // Nothing else: every shard is still handed out.
  EXPECT_EQ(s.next(-1), 2u);
  EXPECT_EQ(s.remaining(), 0u);
}

TEST(DistScheduler, PrefetchedGroupComesAfterTheLoadedOne) {
  Scheduler s({0, 1, 2, 2}, {4.0, 1.0, 3.0, 3.0});
  EXPECT_EQ(s.next(-1), 2u);    // group 2 (6 + 3) before group 0 (4 + 4)
  EXPECT_EQ(s.peek(2), 0);      // leaving group 2 it would get group 0
  EXPECT_EQ(s.next(2, 1), 3u);  // group 2 still has a shard: kept
  EXPECT_EQ(s.next(2, 1), 1u);  // then the prefetched group, not the policy's group 0
  EXPECT_EQ(s.peek(1), 0);
  EXPECT_EQ(s.next(1, 1), 0u);  // prefetched group exhausted: the policy
  EXPECT_FALSE(s.peek(0).has_value());
  EXPECT_FALSE(s.next(0, 1).has_value());
}

TEST(DistScheduler, EveryShardIsHandedOutOnceWhateverTheCalls) {
  std::vector<int> groups;
  std::vector<double> work;
  for (int g = 0; g < 5; ++g) {
    for (int k = 0; k < 7; ++k) {
      groups.push_back(g);
      work.push_back(1.0 + g);
    }
  }
  Scheduler s(groups, work, {3.0, 0.0, 9.0, 1.0, 0.5});
  std::vector<int> seen(groups.size(), 0);
  int loaded = -1;
  for (int call = 0; s.remaining() > 0; ++call) {
    // Callers that lie about their loaded group (a retried request) only steer the choice.
    const auto shard = s.next(call % 3 == 0 ? -1 : loaded, call % 5 == 0 ? 4 : -1);
    ASSERT_TRUE(shard.has_value());
    ++seen[*shard];
    loaded = groups[*shard];
  }
  for (const int n : seen) EXPECT_EQ(n, 1);
  EXPECT_FALSE(s.next(-1).has_value());
}

TEST(DistScheduler, RejectsMismatchedInputs) {
  EXPECT_THROW(Scheduler({0, 1}, {1.0}), Error);
  EXPECT_THROW(Scheduler({-1}, {1.0}), Error);
}

}  // namespace
}  // namespace mll::schedule
