// Private to the distributed module: how the ranks of an MPI job learn that one of them died.
//
// Open MPI does not tell the survivors that a peer died: mpirun (or srun) kills them, SIGTERM
// first and SIGKILL a second later, and the only message is the launcher's. A lifeline is one
// TCP connection between rank 0 and every other rank, opened when labeling starts. The kernel
// closes a process's sockets when it ends, however it ends, so the other end sees end-of-file
// at once; a rank that ends on purpose says "bye" first. Rank 0 watches every worker, a worker
// watches rank 0, and rank 0 passes a loss on to the other workers.
//
// A watcher thread logs the loss the moment it sees it ("rank 2 on host n2 (pid 123) ended
// before the job did ...; rerun to resume"), so the report is made even when the launcher kills
// the survivors a second later. The driver's loops check lost() and leave without another
// collective call (a dead rank would never join it), and MPI is not finalised. A process stuck
// in an MPI call that can never return is ended with exit 74 by the watcher after kGrace.
//
// Set-up is collective and never fatal: when a connection cannot be made (a firewall, no IPv4
// route between nodes) every rank goes on without a lifeline and says so in a warning. TCP
// keepalive finds a node that vanished without closing its connections in about half a minute.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "mll/distributed/comm.hpp"

namespace mll::distributed {

class Lifeline {
 public:
  // How long a process that lost a rank may take to leave on its own before the watcher ends it.
  static constexpr std::chrono::seconds kGrace{20};

  // Collective. Connects the ranks of an MPI comm of several ranks; with one rank, the self and
  // the local backends (one process: no rank can die alone), or when the connections cannot be
  // made, the lifeline watches nothing. Throws CommError when the comm itself fails.
  explicit Lifeline(Comm& comm);
  // Says "bye" to every connected rank and stops the watcher. Never throws.
  ~Lifeline();
  Lifeline(const Lifeline&) = delete;
  Lifeline& operator=(const Lifeline&) = delete;

  // Whether the ranks are connected (a death would be seen). Never throws.
  bool watching() const noexcept;
  // The first loss seen, as a sentence naming the rank, its host and its pid. Never throws.
  std::optional<std::string> lost() const;
  // Throws PeerLost with that sentence when a rank was lost.
  void throw_if_lost() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mll::distributed
