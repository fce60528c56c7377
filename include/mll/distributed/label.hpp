// Labeling a zoo on the ranks of a Comm: one driver for 1..N ranks (design.md "Distribution").
//
// Rank 0 coordinates and is the single writer of the store: it registers the models, plans the
// shards (label::plan_work), hands them out one at a time with schedule::Scheduler (a rank keeps
// its loaded group while that group has shards; otherwise the group with the most work left),
// commits every result and finishes the models. Every rank, rank 0 included, computes shards on
// a compute thread (label::Executor); Comm calls are made by the calling thread only. With one
// rank (the self backend: `mll label` without mpirun, or a build without MPI) the same code runs
// with no peers.
//
// Failure model: an exception on any rank reaches rank 0, which stops every rank; all ranks then
// throw that error (same code and message; no hang). A stop (StopFlag: SIGTERM / SIGUSR1 /
// SIGINT, on any rank) makes every rank finish its current batch; rank 0 commits what was
// computed and all ranks throw Interrupted (exit 75). A rank killed from outside ends the job
// (MPI aborts it); the store stays valid and a rerun resumes. Results do not depend on the
// number of ranks (batches and summary-label blocks lie on fixed grids).
#pragma once

#include <string>
#include <vector>

#include "mll/core/signals.hpp"
#include "mll/distributed/comm.hpp"
#include "mll/label/job.hpp"
#include "mll/zoo/model_spec.hpp"

namespace mll::distributed {

// Collective over `comm`: every rank calls it with the same store, models and options (devices
// may differ). Labels what `specs` miss in the store at `store_path`. When options.run.device is
// CUDA, each rank takes the GPU of its node-local rank (unless MLL_KEEP_DEVICE is set). `stop`
// is this rank's stop request. Returns the report on rank 0 (an empty one elsewhere). Throws on
// every rank what failed on any rank (UsageError/DataError for bad options or inputs, IoError
// when the store fails, CommError when the transport does), or Interrupted after a stop.
label::LabelReport label(Comm& comm, const std::string& store_path,
                         const std::vector<zoo::ModelSpec>& specs, label::LabelOptions options,
                         StopFlag& stop);

// The same in this process alone (the self backend), stopped by the process's stop signals
// (a StopSignals must be alive for them to be caught). Not collective.
label::LabelReport label_here(const std::string& store_path,
                              const std::vector<zoo::ModelSpec>& specs,
                              const label::LabelOptions& options);

// How many of a node's `local_size` ranks label() puts on GPU `index` of `devices` (rank r takes
// GPU r % devices): the ranks that share its memory budget. UsageError unless
// 0 <= index < devices and local_size >= 1.
int ranks_on_device(int local_size, int devices, int index);

// Thread counts given on the command line (0: choose).
struct ThreadRequest {
  int model = 0;   // --threads
  int decode = 0;  // --decode-threads
};

// Settings of this process for labeling as rank `comm.rank()` (not for the local backend,
// whose ranks share one process): the log names the rank when there are several and also goes
// to <log_dir>/rank-<R>.log when log_dir is set (the folder is created; UsageError when it
// cannot be); the model's and the decode threads are chosen
// from the CPUs this process may use (mll::usable_cpus) divided among the ranks of its node, so
// that together they do not oversubscribe them (docs/running.md, "CPUs"), unless `request`
// fixes them; the counts are logged. Not collective. Throws UsageError for a log folder that
// cannot be created, IoError when the log file cannot be opened.
void configure_process(const Comm& comm, label::LabelOptions& options, const std::string& log_dir,
                       const ThreadRequest& request);

}  // namespace mll::distributed
