#include "reduce.hpp"

#include <functional>
#include <set>
#include <string>
#include <utility>

#include "mll/core/error.hpp"
#include "mll/core/log.hpp"

namespace mll::distributed {
namespace {

class CommReducer final : public Reducer {
 public:
  explicit CommReducer(Comm& comm) : comm_(comm) {}
  void max_to_root(std::vector<std::int32_t>& values) override {
    comm_.reduce_max(values, 0, "reducing the predicted nodes");
  }
  const char* name() const noexcept override { return comm_.backend(); }

 private:
  Comm& comm_;
};

// Collective: whether every rank labels on a CUDA device of its own, i.e. the (node, device)
// pairs are distinct. Every rank sees the same gathered table, so every rank answers alike.
bool one_gpu_per_rank(Comm& comm, const zoo::Device& device) {
  const std::uint64_t node = std::hash<std::string>{}(comm.host()) | 1;  // 0 means "no GPU"
  const std::vector<std::uint64_t> mine = {device.is_cuda() && nccl_built() ? node : 0,
                                           static_cast<std::uint64_t>(device.index)};
  const auto all = comm.all_gather(mine, "comparing the ranks' devices");
  std::set<std::pair<std::uint64_t, std::uint64_t>> seen;
  for (std::size_t r = 0; r + 1 < all.size(); r += 2) {
    if (all[r] == 0 || !seen.insert({all[r], all[r + 1]}).second) return false;
  }
  return true;
}

}  // namespace

bool nccl_built() noexcept {
#ifdef MLL_WITH_NCCL
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Reducer> make_reducer(Comm& comm, const zoo::Device& device) {
  const bool nccl = one_gpu_per_rank(comm, device);
#ifdef MLL_WITH_NCCL
  if (nccl) {
    // A failed NCCL set-up (reported on every rank alike) falls back to the Comm: the
    // reduction is small, and the labels are worth more than the transport.
    std::string error;
    std::unique_ptr<Reducer> reducer = make_nccl_reducer(comm, device, &error);
    if (reducer) return reducer;
    if (comm.rank() == 0)
      log::warn("NCCL unavailable (", error, "); reducing over ", comm.backend());
  }
#else
  (void)nccl;
#endif
  return std::make_unique<CommReducer>(comm);
}

}  // namespace mll::distributed
