// Reduction of label statistics over the ranks of a labeling job, to rank 0. The statistic is
// the predicted node of every probe image (label::predict_nodes): each rank fills the blocks it
// predicted and leaves -1 elsewhere, and an element-wise maximum assembles the whole vector.
//
// Two backends: MPI (always; the CPU fallback) and NCCL (built with MLL_WITH_NCCL, chosen when
// every rank labels on a CUDA device: the values are reduced between the GPUs over NVLink or
// InfiniBand, and MPI only carries the communicator's id). Private to the dist module.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "mll/zoo/runner.hpp"

namespace mll::dist {

class Reducer {
 public:
  virtual ~Reducer() = default;
  // Collective over MPI_COMM_WORLD: every rank passes a vector of the same length; on rank 0 it
  // becomes the element-wise maximum over all ranks (other ranks' vectors are left unspecified).
  // Throws InternalError when the transport fails.
  virtual void max_to_root(std::vector<std::int32_t>& values) = 0;
  // "mpi" or "nccl", for the log.
  virtual const char* name() const noexcept = 0;
};

// The MPI backend. Not collective to construct.
std::unique_ptr<Reducer> make_mpi_reducer();

// Whether this build has the NCCL backend. Does not throw.
bool nccl_built() noexcept;

// Collective: NCCL when it is built and every rank labels on its own CUDA device (no two ranks on
// one GPU), MPI otherwise, and MPI when NCCL cannot be set up (logged once). Does not throw
// beyond what MPI itself raises.
std::unique_ptr<Reducer> make_reducer(const zoo::Device& device);

}  // namespace mll::dist
