// Private to the distributed module: the hand-off between a rank's two threads. The main thread
// talks to the other ranks (all Comm calls, as MPI_THREAD_FUNNELED requires); the compute thread
// runs the Executor. The Mailbox is the only state they share and its mutex the only lock.
//
// Compute side: ask() for a shard (blocks until the main thread answers), post() each result,
// fail() on an error, finish() when the thread ends. Main side: take what the compute side left
// (request, results, failure) and answer() requests; close() answers every present and future
// ask() with "no more work", so that the compute thread can always be joined.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

#include "mll/core/error.hpp"
#include "mll/label/job.hpp"

namespace mll::distributed {

struct Failure {
  ExitCode code = ExitCode::kInternal;
  std::string message;
};

class Mailbox {
 public:
  // Compute thread. The next shard for a thread holding `loaded_group`, or nothing when there is
  // no more work (or the mailbox was closed).
  std::optional<label::Shard> ask(int loaded_group);
  void post(label::ShardResult result);
  void fail(Failure failure);
  void finish();

  // Main thread. Each take_* hands over what is waiting (and forgets it).
  std::optional<int> take_request();
  std::deque<label::ShardResult> take_results();
  std::optional<Failure> take_failure();
  void answer(std::optional<label::Shard> shard);
  // True when the compute thread has ended and everything it left has been taken.
  bool drained() const;
  void close();
  // Waits until the compute side changes something, at most `timeout`.
  void wait(std::chrono::milliseconds timeout);

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<int> request_;
  std::optional<std::optional<label::Shard>> answer_;
  std::deque<label::ShardResult> results_;
  std::optional<Failure> failure_;
  bool finished_ = false;
  bool closed_ = false;
  bool news_ = false;  // the compute side changed something since the last wait()
};

}  // namespace mll::distributed
