// Private to the distributed module: the collective finish of labeling. Finishes the models
// whose rows are all stored, sharing the expensive step of their summary labels (predicting the
// node of every probe image, a P x N x d product) among the ranks: block b of `block` images
// goes to rank b mod size. Rank 0 reads the embeddings (it is the writer; other ranks need not
// see its newest files, which a network file system may show late) and sends each rank its
// blocks; the predictions meet on rank 0 through a Reducer (NCCL between GPUs, the Comm
// otherwise), and rank 0 counts them and finishes the model. The blocks lie on a fixed grid, so
// the labels do not depend on the number of ranks. Every step follows the collective error
// protocol (collective.hpp).
#pragma once

#include <cstdint>

#include "coordinator.hpp"
#include "mll/distributed/comm.hpp"
#include "mll/zoo/runner.hpp"

namespace mll::distributed {

// Collective. `coordinator` is rank 0's (null elsewhere). Throws on every rank what failed on
// any rank, CommError.
void finish_together(Comm& comm, Coordinator* coordinator, const zoo::Device& device,
                     std::int64_t block);

}  // namespace mll::distributed
