// Private to the distributed module: rank 0's side of labeling. The coordinator owns the store's
// single writer (label::Committer) and the scheduler; it answers work requests from every rank
// (its own compute thread through the Mailbox, the others through the Comm), commits each
// result, records failed models (their remaining shards are not handed out again), and spreads
// a stop or an error to every rank. With one rank it finishes each model as soon as its rows
// are complete; with several, the ranks finish them together afterwards (finish.hpp).
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lifeline.hpp"
#include "mailbox.hpp"
#include "mll/core/progress.hpp"
#include "mll/core/signals.hpp"
#include "mll/distributed/comm.hpp"
#include "mll/label/job.hpp"
#include "mll/schedule/scheduler.hpp"

namespace mll::distributed {

class Coordinator {
 public:
  // `comm`, `store`, `plan`, `stop` and `lifeline` must outlive the coordinator. Not
  // collective.
  Coordinator(Comm& comm, store::Store& store, const label::WorkPlan& plan,
              const label::LabelOptions& options, StopFlag& stop, const Lifeline& lifeline);

  // Serves every rank until each has been told there is no more work and this rank's compute
  // thread has ended. Throws the first error any rank reported (its code; "rank R: " in front
  // when there are several ranks), Interrupted after a stop signal on any rank, IoError when the
  // store cannot be written, PeerLost as soon as a rank died, CommError.
  void run(Mailbox& local);

  // After run() threw on this rank's own account (the store failed): tells every worker still
  // in the loop to stop and answers its requests with "no more work", so that no rank waits
  // forever. Throws CommError.
  void abandon();

  // After the run: throws DataError listing the shards that stopped at a probe image that cannot
  // be used (the other shards were committed), if there were any.
  void throw_if_unreadable() const;

  label::Committer& committer() noexcept { return committer_; }
  const store::Store& store() const noexcept { return store_; }
  const label::LabelReport& report() const noexcept { return committer_.report(); }

 private:
  std::optional<label::Shard> next(int loaded_group);
  void accept(const label::ShardResult& result);
  void fail(ExitCode code, const std::string& message, int rank);
  void stop(int signal_number);
  bool serve_local(Mailbox& local);
  bool serve_remote();
  void answer_request(int rank, int loaded_group);
  void end_of_run();

  Comm& comm_;
  store::Store& store_;
  const label::WorkPlan& plan_;
  label::Committer committer_;
  StopFlag& stop_flag_;
  const Lifeline& lifeline_;
  std::unique_ptr<schedule::Scheduler> scheduler_;
  std::unique_ptr<Progress> progress_;
  std::set<int> active_;  // worker ranks not yet told "no more work"
  bool stopping_ = false;
  bool signal_logged_ = false;
  int stop_signal_ = 0;
  std::optional<Failure> error_;
  std::vector<std::string> unreadable_;  // one message per shard stopped by a probe image
};

}  // namespace mll::distributed
