#include "reduce.hpp"

#include <mpi.h>

#include "mll/core/error.hpp"

namespace mll::dist {

#ifdef MLL_WITH_NCCL
// reduce_nccl.cpp
std::unique_ptr<Reducer> make_nccl_reducer(const zoo::Device& device);
#endif

namespace {

class MpiReducer final : public Reducer {
 public:
  void max_to_root(std::vector<std::int32_t>& values) override {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    const int count = static_cast<int>(values.size());
    const int rc = rank == 0 ? MPI_Reduce(MPI_IN_PLACE, values.data(), count, MPI_INT32_T, MPI_MAX,
                                          0, MPI_COMM_WORLD)
                             : MPI_Reduce(values.data(), nullptr, count, MPI_INT32_T, MPI_MAX, 0,
                                          MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) MLL_THROW(InternalError, "MPI_Reduce of predictions failed (", rc, ")");
  }
  const char* name() const noexcept override { return "mpi"; }
};

}  // namespace

std::unique_ptr<Reducer> make_mpi_reducer() { return std::make_unique<MpiReducer>(); }

bool nccl_built() noexcept {
#ifdef MLL_WITH_NCCL
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Reducer> make_reducer(const zoo::Device& device) {
  // Every rank must take the same branch: NCCL only when all ranks are on CUDA devices.
  int cuda = device.is_cuda() && nccl_built() ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &cuda, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
#ifdef MLL_WITH_NCCL
  if (cuda == 1) return make_nccl_reducer(device);
#endif
  return make_mpi_reducer();
}

}  // namespace mll::dist
