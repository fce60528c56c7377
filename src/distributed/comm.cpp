#include "mll/distributed/comm.hpp"

#include "backend.hpp"

namespace mll::distributed {

Comm Comm::self() { return std::move(detail::make_local(1).front()); }

std::vector<Comm> Comm::local(int size) {
  if (size < 1) MLL_THROW(UsageError, "a local communicator needs at least 1 rank, not ", size);
  return detail::make_local(size);
}

Comm::Comm(std::unique_ptr<detail::Backend> backend) noexcept : backend_(std::move(backend)) {}
Comm::Comm(Comm&&) noexcept = default;
Comm& Comm::operator=(Comm&&) noexcept = default;
Comm::~Comm() = default;

int Comm::rank() const noexcept { return backend_->rank(); }
int Comm::size() const noexcept { return backend_->size(); }
int Comm::local_rank() const noexcept { return backend_->local_rank(); }
int Comm::local_size() const noexcept { return backend_->local_size(); }
const std::string& Comm::host() const noexcept { return backend_->host(); }
const char* Comm::backend() const noexcept { return backend_->name(); }

void Comm::check_peer(int rank, bool any_allowed, std::string_view context) const {
  if ((any_allowed && rank == kAnySource) || (rank >= 0 && rank < size())) return;
  MLL_THROW(UsageError, context, ": no rank ", rank, " among ", size());
}

void Comm::check_tag(int tag, bool any_allowed, std::string_view context) const {
  if ((any_allowed && tag == kAnyTag) || (tag >= 0 && tag < kMaxTag)) return;
  MLL_THROW(UsageError, context, ": message tag ", tag, " outside [0, ", kMaxTag, ")");
}

void Comm::send(const std::vector<char>& bytes, int to, int tag, std::string_view context) {
  check_peer(to, false, context);
  check_tag(tag, false, context);
  backend_->send(bytes, to, tag, context);
}

std::vector<char> Comm::receive(int from, int tag, std::string_view context, Envelope* envelope) {
  check_peer(from, true, context);
  check_tag(tag, true, context);
  return backend_->receive(from, tag, context, envelope);
}

std::optional<Envelope> Comm::probe(int from, int tag, std::string_view context) {
  check_peer(from, true, context);
  check_tag(tag, true, context);
  return backend_->probe(from, tag, context);
}

void Comm::broadcast(std::vector<char>& bytes, int root, std::string_view context) {
  check_peer(root, false, context);
  backend_->broadcast(bytes, root, context);
}

std::pair<std::int32_t, int> Comm::max_loc(std::int32_t value, std::string_view context) {
  return backend_->max_loc(value, context);
}

void Comm::reduce_max(std::vector<std::int32_t>& values, int root, std::string_view context) {
  check_peer(root, false, context);
  backend_->reduce_max(values, root, context);
}

std::vector<std::uint64_t> Comm::all_gather(const std::vector<std::uint64_t>& mine,
                                            std::string_view context) {
  return backend_->all_gather(mine, context);
}

void Comm::barrier(std::string_view context) { backend_->barrier(context); }

}  // namespace mll::distributed
