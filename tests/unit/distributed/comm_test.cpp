// The Comm conformance checks on the in-process backends: self, and local at 1..5 ranks (one
// thread per rank); the collective error protocol; the Mailbox-free parts of the Session.
#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "comm_conformance.hpp"
#include "mll/distributed/collective.hpp"
#include "mll/distributed/session.hpp"

namespace mll::test {
namespace {

using distributed::Comm;

// Runs `body(rank's comm)` on every rank of a local communicator of `size`, one thread each.
void on_ranks(int size, const std::function<void(Comm&)>& body) {
  auto comms = Comm::local(size);
  std::vector<std::thread> threads;
  for (auto& comm : comms) threads.emplace_back([&] { body(comm); });
  for (auto& t : threads) t.join();
}

class CommLocal : public ::testing::TestWithParam<int> {};

TEST_P(CommLocal, IdentityOfEveryRank) {
  on_ranks(GetParam(), [&](Comm& comm) {
    check_identity(comm, GetParam());
    EXPECT_STREQ(comm.backend(), GetParam() == 1 ? "self" : "local");
  });
}

TEST_P(CommLocal, PointToPointKeepsOrderPerTag) {
  on_ranks(GetParam(), [](Comm& comm) { check_point_to_point(comm, 100000); });
}

TEST_P(CommLocal, CollectivesAgreeOnEveryRank) {
  on_ranks(GetParam(), [](Comm& comm) { check_collectives(comm, 4096); });
}

TEST_P(CommLocal, BadRanksAndTagsAreUsageErrors) {
  on_ranks(GetParam(), [](Comm& comm) { check_bad_arguments(comm); });
}

// An error on one rank ends every rank with that rank's message; the highest exit code wins,
// the lowest rank among equals.
TEST_P(CommLocal, AgreeThrowsTheWorstErrorOnEveryRank) {
  const int size = GetParam();
  on_ranks(size, [&](Comm& comm) {
    distributed::Outcome nothing;
    EXPECT_NO_THROW(agree(comm, nothing, "test"));
    distributed::Outcome outcome;
    if (comm.rank() == size - 1) outcome.run([] { MLL_THROW(DataError, "bad file"); });
    if (size > 2 && comm.rank() == 1) outcome.run([] { MLL_THROW(UsageError, "bad option"); });
    // A later step of a failed outcome is not run (it would raise the exit code to 74).
    if (outcome.failed()) outcome.run([] { MLL_THROW(IoError, "not run after a failure"); });
    try {
      agree(comm, distributed::Outcome(outcome), "test");
      ADD_FAILURE() << "agree() returned on rank " << comm.rank();
    } catch (const DataError& e) {
      const std::string expected =
          size > 1 ? "rank " + std::to_string(size - 1) + ": bad file" : "bad file";
      EXPECT_EQ(std::string(e.what()), expected);
    }
  });
}

TEST_P(CommLocal, ShareOutcomeSpreadsTheRootsResult) {
  on_ranks(GetParam(), [](Comm& comm) {
    distributed::Outcome outcome;
    if (comm.rank() == 0) outcome.fail(ExitCode::kInterrupted, "stopped by signal 10");
    try {
      share_outcome(comm, outcome, 0, "test");
      ADD_FAILURE() << "share_outcome() returned";
    } catch (const Interrupted& e) {
      EXPECT_EQ(std::string(e.what()), "stopped by signal 10");
    }
    EXPECT_NO_THROW(share_outcome(comm, distributed::Outcome(), 0, "test"));
  });
}

INSTANTIATE_TEST_SUITE_P(Ranks, CommLocal, ::testing::Values(1, 2, 3, 4, 5));

// A user's kAnyTag never matches a collective's internal traffic: rank 1 posts its broadcast
// before a user message, and rank 0, having received that message, sees nothing else waiting.
TEST(CommLocalTags, AnyTagDoesNotSeeCollectiveTraffic) {
  on_ranks(2, [](Comm& comm) {
    std::vector<char> bytes = {'b'};
    if (comm.rank() == 1) {
      comm.broadcast(bytes, 1, "test");
      comm.send({'u'}, 0, 3, "test");
    } else {
      EXPECT_EQ(comm.receive(1, distributed::kAnyTag, "test"), std::vector<char>{'u'});
      EXPECT_FALSE(comm.probe(distributed::kAnySource, distributed::kAnyTag, "test"));
      comm.broadcast(bytes, 1, "test");
      EXPECT_EQ(bytes, std::vector<char>{'b'});
    }
  });
}

TEST(CommLocalTags, LocalNeedsAtLeastOneRank) { EXPECT_THROW(Comm::local(0), UsageError); }

// Without an MPI launcher the world is this process alone, in any build.
TEST(CommSession, WithoutALauncherTheWorldIsSelf) {
  if (distributed::Session::launched_by_mpi()) GTEST_SKIP() << "running under an MPI launcher";
  distributed::Session session;
  Comm world = session.world();
  EXPECT_STREQ(world.backend(), "self");
  EXPECT_EQ(world.size(), 1);
  EXPECT_EQ(session.rank(), 0);
  EXPECT_EQ(distributed::Session::launched_size(), 1);
}

}  // namespace
}  // namespace mll::test
