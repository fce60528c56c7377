// The collective error protocol every collective phase of mll follows, so that an error on one
// rank ends every rank with the same message instead of leaving the others waiting for a rank
// that has gone (design.md "Distribution": collective phases agree on errors before acting).
//
// A phase is a sequence of steps. In each step some ranks do local work that may fail (read a
// file, compute); the work runs inside an Outcome, which keeps the error instead of letting it
// leave. Before any rank acts on the step (sends what it computed, writes, goes on), every rank
// calls agree(): it returns on every rank when no rank failed, and otherwise throws the same
// error on every rank. So every rank leaves the phase at the same step, and every message a
// step promises is still sent (empty after a failure) so that no receiver blocks forever.
//
//   Outcome outcome;
//   if (comm.rank() == 0) outcome.run([&] { rows = store.read(...); });
//   agree(comm, outcome, "reading the embeddings");   // every rank, in the same order
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "mll/core/error.hpp"
#include "mll/distributed/comm.hpp"

namespace mll::distributed {

// The result of one rank's local work in a step: ok, or the first error's code and message.
class Outcome {
 public:
  // Runs `step` unless an earlier step of this Outcome failed; an exception it throws is kept
  // (mll errors with their code, anything else as an internal error). Never throws.
  template <typename Step>
  void run(Step&& step) noexcept {
    if (failed()) return;
    try {
      step();
    } catch (const Error& e) {
      fail(e.code(), e.what());
    } catch (const std::exception& e) {
      fail(ExitCode::kInternal, e.what());
    } catch (...) {
      fail(ExitCode::kInternal, "unknown exception");
    }
  }
  // Records a failure (the first one wins). Never throws.
  void fail(ExitCode code, std::string message) noexcept;
  bool failed() const noexcept { return code_ != ExitCode::kOk; }
  ExitCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

 private:
  ExitCode code_ = ExitCode::kOk;
  std::string message_;
};

// Collective: returns on every rank when no rank's `outcome` failed; otherwise every rank throws
// the error of the failing rank with the highest exit code (the lowest such rank), with the mll
// error type of that code and, when there are several ranks, its message prefixed by
// "rank R: ". Throws CommError when the transport fails.
void agree(Comm& comm, const Outcome& outcome, std::string_view context);

// Collective: `root`'s outcome on every rank (for a result only `root` knows, e.g. how the
// coordinator's loop ended); thrown on every rank when it failed, as agree() does but without a
// rank prefix (the root's message already says which rank). Throws CommError.
void share_outcome(Comm& comm, const Outcome& outcome, int root, std::string_view context);

}  // namespace mll::distributed
