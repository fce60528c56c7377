// Distributed labeling over MPI ranks (issue: "MPI ranks label shards of the zoo").
//
// Rank 0 is the coordinator and the single writer of the store: it registers the models, plans
// the shards (label::plan_work), hands them out one at a time with dist::Scheduler (a rank keeps
// its loaded group while that group has shards; otherwise longest remaining group first), commits
// every result and finishes models. Every rank, rank 0 included, computes shards on a worker
// thread (label::Executor); MPI calls are made by the main threads only (MPI_THREAD_FUNNELED).
//
// Failure model: an exception on any rank reaches rank 0, which stops every rank and exits with
// that error's code and message (no hang). SIGTERM / SIGUSR1 / SIGINT on any rank: every rank
// finishes its current batch, rank 0 commits what was computed and all exit 75. A rank killed from
// outside ends the job (MPI aborts it); the store stays valid and a rerun resumes. Results do not
// depend on the number of ranks (batches lie on a fixed grid).
#pragma once

#include <string>
#include <vector>

#include "mll/label/job.hpp"
#include "mll/zoo/model_spec.hpp"

namespace mll::dist {

// True when this process was started by mpirun/mpiexec or srun with an MPI world (Open MPI or
// PMIx environment variables). Never throws.
bool launched_by_mpi() noexcept;

struct DistOptions {
  std::string log_dir;  // if set, each rank also logs to <log_dir>/rank-<R>.log
};

// Initialises MPI (once per process) and labels `specs` into the store at `store_path`.
// Collective over MPI_COMM_WORLD: every rank must call it with the same arguments. The device of
// each rank is chosen from its node-local rank when options.run.device is "auto" and CUDA is
// present; CPU threads are divided among the ranks of a node. Returns the report on rank 0 (an
// empty one elsewhere). Throws on every rank what failed on any rank (same exit code), or
// Interrupted after a stop signal.
label::LabelReport label_distributed(const std::string& store_path,
                                     const std::vector<zoo::ModelSpec>& specs,
                                     label::LabelOptions options, const DistOptions& dist);

// This process's rank and the world size after label_distributed initialised MPI (0 and 1
// before). Never throws.
int world_rank() noexcept;
int world_size() noexcept;

}  // namespace mll::dist
