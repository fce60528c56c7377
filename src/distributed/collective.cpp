#include "mll/distributed/collective.hpp"

#include "protocol.hpp"

namespace mll::distributed {

void Outcome::fail(ExitCode code, std::string message) noexcept {
  if (failed()) return;
  code_ = code == ExitCode::kOk ? ExitCode::kInternal : code;
  message_ = std::move(message);
}

void agree(Comm& comm, const Outcome& outcome, std::string_view context) {
  const auto [code, rank] = comm.max_loc(static_cast<std::int32_t>(outcome.code()), context);
  if (code == 0) return;
  std::vector<char> text(outcome.message().begin(), outcome.message().end());
  comm.broadcast(text, rank, context);
  const std::string message(text.begin(), text.end());
  throw_error(static_cast<ExitCode>(code),
              comm.size() > 1 ? "rank " + std::to_string(rank) + ": " + message : message);
}

void share_outcome(Comm& comm, const Outcome& outcome, int root, std::string_view context) {
  wire::Writer w;
  w.put<std::int32_t>(static_cast<std::int32_t>(outcome.code()));
  w.put(outcome.message());
  comm.broadcast(w.buffer(), root, context);
  wire::Reader r(w.buffer());
  const auto code = static_cast<ExitCode>(r.get<std::int32_t>());
  const std::string message = r.get_string();
  if (code != ExitCode::kOk) throw_error(code, message);
}

}  // namespace mll::distributed
