// Private to the distributed module: what a transport implements behind Comm. Comm checks ranks
// and tags before calling in, so backends may assume them valid.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mll/distributed/comm.hpp"

namespace mll::distributed::detail {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual int rank() const noexcept = 0;
  virtual int size() const noexcept = 0;
  virtual int local_rank() const noexcept = 0;
  virtual int local_size() const noexcept = 0;
  virtual const std::string& host() const noexcept = 0;
  virtual const char* name() const noexcept = 0;

  virtual void send(const std::vector<char>& bytes, int to, int tag, std::string_view context) = 0;
  virtual std::vector<char> receive(int from, int tag, std::string_view context,
                                    Envelope* envelope) = 0;
  virtual std::optional<Envelope> probe(int from, int tag, std::string_view context) = 0;

  virtual void broadcast(std::vector<char>& bytes, int root, std::string_view context) = 0;
  virtual std::pair<std::int32_t, int> max_loc(std::int32_t value, std::string_view context) = 0;
  virtual void reduce_max(std::vector<std::int32_t>& values, int root,
                          std::string_view context) = 0;
  virtual std::vector<std::uint64_t> all_gather(const std::vector<std::uint64_t>& mine,
                                                std::string_view context) = 0;
  virtual void barrier(std::string_view context) = 0;
};

// The in-process backend (local_backend.cpp): `size` ranks, named "self" when size is 1.
std::vector<Comm> make_local(int size);

// This node's name (gethostname), for the backends that have no MPI to ask. Never throws.
std::string host_name() noexcept;

// A rank of this job was lost (lifeline.hpp): MPI must not be finalised (MPI_Finalize and
// MPI_Comm_free may wait for the dead rank). Never throw.
void mark_world_broken() noexcept;
bool world_broken() noexcept;

}  // namespace mll::distributed::detail
