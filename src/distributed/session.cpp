#include "mll/distributed/session.hpp"

#include "backend.hpp"

#include <atomic>
#include <climits>
#include <cstdlib>
#include <string>

namespace mll::distributed {
namespace {

int positive_env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return 0;
  char* end = nullptr;
  const long n = std::strtol(value, &end, 10);
  return end != value && *end == '\0' && n > 0 && n < INT_MAX ? static_cast<int>(n) : 0;
}

std::atomic<bool> broken{false};

}  // namespace

void detail::mark_world_broken() noexcept { broken = true; }
bool detail::world_broken() noexcept { return broken; }

Session::~Session() {
#if MLL_WITH_MPI
  finish_mpi();
#endif
}

#if !MLL_WITH_MPI
bool Session::mpi_built() noexcept { return false; }
#endif

bool Session::launched_by_mpi() noexcept {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

int Session::launched_size() noexcept {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    if (const int n = positive_env(name)) return n;
  }
  if (std::getenv("PMIX_RANK") != nullptr) {  // srun --mpi=pmix sets no size of its own
    for (const char* name : {"SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"}) {
      if (const int n = positive_env(name)) return n;
    }
  }
  return 1;
}

Comm Session::world(std::size_t max_piece) {
  if (!launched_by_mpi()) return Comm::self();
#if MLL_WITH_MPI
  start_mpi();
  Comm world = mpi_world(max_piece == 0 ? static_cast<std::size_t>(INT_MAX) : max_piece);
  rank_ = world.rank();
  return world;
#else
  (void)max_piece;
  if (launched_size() > 1) {
    MLL_THROW(UsageError, "this mll was built without MPI (-DMLL_WITH_MPI=OFF) but was started as ",
              launched_size(), " ranks; run one process, or build with MPI");
  }
  return Comm::self();
#endif
}

}  // namespace mll::distributed
