// The process's MPI lifetime, as one RAII object owned by the command line (cli::run): MPI is
// started when a command first asks for the job's world and this process was launched by
// mpirun/mpiexec or srun, and finalised when the Session ends. A build without MPI
// (-DMLL_WITH_MPI=OFF) has no MPI backend; its world is always the self backend.
#pragma once

#include <cstddef>

#include "mll/distributed/comm.hpp"

namespace mll::distributed {

class Session {
 public:
  Session() noexcept = default;
  // Finalises MPI when this Session started it. Every Comm from world() must be gone by then.
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // The ranks of this job: a new duplicate of MPI's world (MPI started on the first call) when
  // launched by an MPI launcher, the self backend otherwise. `max_piece` bounds the bytes of one
  // MPI message (0: INT_MAX; tests use less to exercise the splitting). Collective under MPI.
  // Throws CommError when MPI cannot be set up, UsageError when a build without MPI was launched
  // as several ranks (they would all write one store).
  Comm world(std::size_t max_piece = 0);

  // This process's world rank once world() started MPI, 0 otherwise. Never throws.
  int rank() const noexcept { return rank_; }

  // Whether this build has the MPI backend. Never throws.
  static bool mpi_built() noexcept;
  // True when this process was started by mpirun/mpiexec or srun with an MPI world (Open MPI,
  // PMI or PMIx environment variables). Never throws.
  static bool launched_by_mpi() noexcept;
  // The number of ranks the launcher says it started (1 when it says nothing). Never throws.
  static int launched_size() noexcept;

 private:
  void start_mpi();
  void finish_mpi() noexcept;
  static Comm mpi_world(std::size_t max_piece);

  bool started_ = false;
  int rank_ = 0;
};

}  // namespace mll::distributed
