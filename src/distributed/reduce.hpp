// Private to the distributed module: the reduction of label statistics over the ranks of a
// labeling job, to rank 0. The statistic is the predicted node of every probe image
// (label::predict_nodes): each rank fills the blocks it predicted and leaves -1 elsewhere, and an
// element-wise maximum assembles the whole vector.
//
// Two backends: the Comm's own reduction (always; MPI between processes, the CPU fallback) and
// NCCL (built with MLL_WITH_NCCL, chosen when every rank labels on its own CUDA device: the
// values are reduced between the GPUs over NVLink or InfiniBand, and the Comm only carries the
// NCCL communicator's id and the agreement before each NCCL call).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mll/distributed/comm.hpp"
#include "mll/zoo/runner.hpp"

namespace mll::distributed {

class Reducer {
 public:
  virtual ~Reducer() = default;
  // Collective: every rank passes a vector of the same length; on rank 0 it becomes the
  // element-wise maximum over all ranks (other ranks' vectors are left unspecified). Throws
  // CommError or InternalError when the transport fails.
  virtual void max_to_root(std::vector<std::int32_t>& values) = 0;
  // The transport, for the log: "mpi", "local", "self" or "nccl".
  virtual const char* name() const noexcept = 0;
};

// Whether this build has the NCCL backend. Does not throw.
bool nccl_built() noexcept;

// Collective: NCCL when it is built and every rank labels on its own CUDA device (no two ranks on
// one GPU), the Comm's reduction otherwise, and that too when NCCL cannot be set up (logged once).
// `comm` must outlive the reducer. Throws CommError.
std::unique_ptr<Reducer> make_reducer(Comm& comm, const zoo::Device& device);

#ifdef MLL_WITH_NCCL
// reduce_nccl.cpp. Collective; null (with the reason in *error, on every rank) when any rank
// failed to set up.
std::unique_ptr<Reducer> make_nccl_reducer(Comm& comm, const zoo::Device& device,
                                           std::string* error);
#endif

}  // namespace mll::distributed
