// main() of every GoogleTest binary: sets the environment the tests rely on, then runs them.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

int main(int argc, char** argv) {
  // Open MPI refuses to run as root without these, and CI machines have 2 cores: tests that start
  // mpiexec or mll under MPI need oversubscription and the shared-memory transport. Values
  // already set by the user win (overwrite = 0).
  const char* settings[][2] = {
      {"OMPI_ALLOW_RUN_AS_ROOT", "1"},
      {"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1"},
      {"OMPI_MCA_rmaps_base_oversubscribe", "1"},
      {"OMPI_MCA_pml", "ob1"},
      {"OMPI_MCA_btl", "self,vader"},
      {"OMPI_MCA_plm", "isolated"},
      {"OMPI_MCA_btl_vader_single_copy_mechanism", "none"},
      {"OMPI_MCA_mpi_yield_when_idle", "1"},
      {"MLL_SOURCE_DIR", MLL_TEST_SOURCE_DIR},
      {"MLL_BINARY_DIR", MLL_TEST_BINARY_DIR},
  };
  for (const auto& [name, value] : settings) setenv(name, value, /*overwrite=*/0);
  // Each test process gets its own Open MPI session folder: concurrent mpiruns sharing
  // /tmp/ompi.<host>.<uid> race on creating and removing it ("mkdir ... File exists").
  const std::string session = "/tmp/mll-ompi-" + std::to_string(::getpid());
  std::filesystem::create_directories(session);
  setenv("OMPI_MCA_orte_tmpdir_base", session.c_str(), /*overwrite=*/0);
  const int status = [&] {
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
  }();
  std::error_code ec;
  std::filesystem::remove_all(session, ec);
  return status;
}
