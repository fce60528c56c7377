// The Comm conformance checks on the MPI backend, run by ctest under mpiexec at 1, 2, 3 and 5
// ranks. Messages are cut into pieces of at most 1,000 bytes here so that the splitting of
// messages longer than MPI's int counts is exercised with small buffers.
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>

#include "comm_conformance.hpp"
#include "mll/distributed/session.hpp"

namespace mll::test {
namespace {

distributed::Comm* g_world = nullptr;
constexpr std::size_t kPiece = 1000;

TEST(CommMpi, IsTheMpiBackendWithTheLaunchersRanks) {
  ASSERT_TRUE(distributed::Session::launched_by_mpi());
  EXPECT_STREQ(g_world->backend(), "mpi");
  check_identity(*g_world, distributed::Session::launched_size());
}

TEST(CommMpi, PointToPointKeepsOrderPerTagAndReassemblesLargeMessages) {
  check_point_to_point(*g_world, 10 * kPiece + 17);
}

TEST(CommMpi, CollectivesAgreeOnEveryRank) { check_collectives(*g_world, 10 * kPiece + 5); }

TEST(CommMpi, BadRanksAndTagsAreUsageErrors) { check_bad_arguments(*g_world); }

}  // namespace
}  // namespace mll::test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  int status = 0;
  {
    mll::distributed::Session session;
    mll::distributed::Comm world = session.world(mll::test::kPiece);
    mll::test::g_world = &world;
    status = RUN_ALL_TESTS();
    // Every rank leaves with the worst status, so that mpiexec reports a failure on any rank.
    status = world.max_loc(status, "test status").first;
    mll::test::g_world = nullptr;
  }
  return status;
}
