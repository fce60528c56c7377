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
  // group 0: 3 x 2 = 6; group 1: 1 x 5 = 5. After one shard of group 0 it has 4 left < 5.
  Scheduler s({0, 0, 0, 1}, {2.0, 2.0, 2.0, 5.0});
  EXPECT_EQ(s.next(-1), 0u);
  EXPECT_EQ(s.next(-1), 3u);
  EXPECT_EQ(s.next(-1), 1u);
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

TEST(DistScheduler, RejectsMismatchedInputs) {
  EXPECT_THROW(Scheduler({0, 1}, {1.0}), Error);
  EXPECT_THROW(Scheduler({-1}, {1.0}), Error);
}

}  // namespace
}  // namespace mll::schedule
