#include "reduce.hpp"

#include <mpi.h>

#include <functional>
#include <set>
#include <string>
#include <utility>

#include "mll/core/error.hpp"
#include "mll/core/log.hpp"

namespace mll::dist {

#ifdef MLL_WITH_NCCL
// reduce_nccl.cpp. Collective; null (with the reason in *error, on every rank) when any rank
// failed to set up.
std::unique_ptr<Reducer> make_nccl_reducer(const zoo::Device& device, std::string* error);
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
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  // NCCL needs every rank on its own GPU: (node, device) pairs must be distinct. Every rank sees
  // the same gathered table, so every rank takes the same branch.
  char host[MPI_MAX_PROCESSOR_NAME] = {};
  int host_length = 0;
  MPI_Get_processor_name(host, &host_length);
  const std::uint64_t node = std::hash<std::string>{}(std::string(host, host_length));
  const std::uint64_t mine[2] = {device.is_cuda() && nccl_built() ? node : 0,
                                 static_cast<std::uint64_t>(device.index)};
  std::vector<std::uint64_t> all(2 * static_cast<std::size_t>(size));
  MPI_Allgather(mine, 2, MPI_UINT64_T, all.data(), 2, MPI_UINT64_T, MPI_COMM_WORLD);
  std::set<std::pair<std::uint64_t, std::uint64_t>> seen;
  bool nccl = true;
  for (int r = 0; r < size; ++r) {
    const auto key = std::make_pair(all[2 * r], all[2 * r + 1]);
    nccl = nccl && key.first != 0 && seen.insert(key).second;
  }
#ifdef MLL_WITH_NCCL
  if (nccl) {
    // A failed NCCL set-up (reported on every rank alike) falls back to MPI: the reduction is
    // small, and the labels are worth more than the transport.
    std::string error;
    std::unique_ptr<Reducer> reducer = make_nccl_reducer(device, &error);
    if (reducer) return reducer;
    if (rank == 0) log::warn("NCCL unavailable (", error, "); reducing over MPI");
  }
#else
  (void)nccl;
#endif
  return make_mpi_reducer();
}

}  // namespace mll::dist
