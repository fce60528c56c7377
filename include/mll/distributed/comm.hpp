// Communication between the ranks of one job (design.md "Distribution"): the only interface the
// labeling driver talks to, so that one driver serves 1..N ranks and mll builds without MPI.
//
// A Comm is one rank's end of a group of `size` ranks. Three backends:
//   mpi    a duplicate of MPI's world communicator (Session::world()); every MPI return code is
//   checked
//          (MPI_ERRORS_RETURN on the duplicate) and a failure throws CommError;
//   self   this process alone (size 1);
//   local  `size` ranks in this process, one thread each, joined by in-memory mailboxes: the
//          coordinator/worker protocol runs in a unit test without mpirun.
//
// Messages are byte buffers of any length (size_t; the MPI backend cuts them into pieces of at
// most INT_MAX bytes, which MPI's int counts cannot exceed). Between two ranks, messages with the
// same tag arrive in the order they were sent. Tags are user tags in [0, kMaxTag); kAnySource and
// kAnyTag match any sender or user tag, never a collective's internal traffic.
//
// Threading: one thread per Comm at a time (for MPI: the thread that started MPI, which asks for
// MPI_THREAD_FUNNELED). Collective calls must be made by every rank of the Comm, in the same
// order. Every call takes a `context` phrase ("sending a shard to rank 2") that starts the
// message of the CommError it may throw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mll/core/error.hpp"

namespace mll::distributed {

// A transport call failed: a peer died, the network broke, MPI refused. Exit code 74 (I/O): the
// store stays valid and a rerun resumes.
class CommError : public IoError {
 public:
  using IoError::IoError;
};

// A rank of the job ended without finishing its part (killed, crashed, its node lost): no
// collective call can complete any more, so the surviving ranks leave without one. Exit code 74.
class PeerLost : public CommError {
 public:
  using CommError::CommError;
};

inline constexpr int kAnySource = -1;
inline constexpr int kAnyTag = -1;
inline constexpr int kMaxTag = 1 << 14;  // user tags are below; MPI guarantees at least 32767

// Who sent a message and with which tag.
struct Envelope {
  int source = 0;
  int tag = 0;
};

namespace detail {
class Backend;
}

class Comm {
 public:
  // This process alone: rank 0 of 1. Never throws.
  static Comm self();
  // `size` ranks in this process; element r is rank r's Comm, to be used by one thread (the
  // rank's). All of them must outlive every call in flight. Throws UsageError for size < 1.
  static std::vector<Comm> local(int size);

  explicit Comm(std::unique_ptr<detail::Backend> backend) noexcept;
  Comm(Comm&&) noexcept;
  Comm& operator=(Comm&&) noexcept;
  ~Comm();
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;

  // Not collective; never throw.
  int rank() const noexcept;
  int size() const noexcept;
  int local_rank() const noexcept;  // rank among the ranks on this node (picks the GPU)
  int local_size() const noexcept;
  const std::string& host() const noexcept;  // this rank's node name
  const char* backend() const noexcept;      // "mpi", "self" or "local"

  // Point to point; not collective. `send` returns once the buffer may be reused (it may wait
  // for the receiver, as MPI_Send does). Throws CommError; UsageError for a bad rank or tag.
  void send(const std::vector<char>& bytes, int to, int tag, std::string_view context);
  // Blocks until a message from `from` (or kAnySource) with `tag` (or kAnyTag) arrives and
  // returns it; its sender and tag go to *envelope when given. Throws CommError.
  std::vector<char> receive(int from, int tag, std::string_view context,
                            Envelope* envelope = nullptr);
  // The envelope of a matching message that is waiting, without receiving it or blocking.
  // Throws CommError.
  std::optional<Envelope> probe(int from, int tag, std::string_view context);

  // Collective: `root`'s bytes on every rank. Throws CommError.
  void broadcast(std::vector<char>& bytes, int root, std::string_view context);
  // Collective: the largest `value` of any rank and the lowest rank holding it, on every rank.
  // Throws CommError.
  std::pair<std::int32_t, int> max_loc(std::int32_t value, std::string_view context);
  // Collective: on `root`, the element-wise maximum over every rank's `values` (all of one
  // length); other ranks' values are unspecified afterwards. Throws CommError (the local
  // backend also when the lengths differ).
  void reduce_max(std::vector<std::int32_t>& values, int root, std::string_view context);
  // Collective: every rank's `mine` (one length on all ranks) concatenated in rank order, on
  // every rank. Throws CommError.
  std::vector<std::uint64_t> all_gather(const std::vector<std::uint64_t>& mine,
                                        std::string_view context);
  // Collective: returns when every rank has entered it. Throws CommError.
  void barrier(std::string_view context);

 private:
  void check_peer(int rank, bool any_allowed, std::string_view context) const;
  void check_tag(int tag, bool any_allowed, std::string_view context) const;

  std::unique_ptr<detail::Backend> backend_;
};

}  // namespace mll::distributed
