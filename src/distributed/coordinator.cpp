#include "coordinator.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>

#include "mll/core/log.hpp"
#include "mll/schedule/work_rule.hpp"
#include "protocol.hpp"

namespace mll::distributed {
namespace {

// How long rank 0 waits for its compute thread before looking at the network again.
constexpr std::chrono::milliseconds kPollInterval{1};

// Shard costs in GFLOPs; under the cost rule a switch to a group also costs its load, converted
// at the rule's assumed rates (what `mll plan` simulates).
std::unique_ptr<schedule::Scheduler> make_scheduler(const label::WorkPlan& plan,
                                                    const label::LabelOptions& options) {
  std::vector<int> groups;
  std::vector<double> work;
  for (const auto& shard : plan.shards) {
    groups.push_back(shard.group);
    const double rows = static_cast<double>(shard.end - shard.begin);
    work.push_back(rows * plan.groups[static_cast<std::size_t>(shard.group)].gflops_per_image);
  }
  if (!options.cost_rule) return std::make_unique<schedule::Scheduler>(groups, work);
  const schedule::RuleOptions rates;
  std::vector<double> switching;
  for (const auto& group : plan.groups) {
    switching.push_back(static_cast<double>(group.memory) / (rates.load_gbps * 1e9) *
                        rates.gpu_tflops * 1e3);
  }
  return std::make_unique<schedule::Scheduler>(groups, work, switching);
}

std::unique_ptr<Progress> make_progress(const label::WorkPlan& plan,
                                        const label::LabelOptions& options) {
  std::int64_t images = 0;
  for (const auto& shard : plan.shards) {
    if (shard.kind == store::UnitKind::kImage) images += shard.end - shard.begin;
  }
  if (!options.progress || images == 0) return nullptr;
  return std::make_unique<Progress>("label", images, "images");
}

void log_groups(const label::WorkPlan& plan) {
  for (const auto& group : plan.groups) {
    std::string names;
    for (const auto& m : group.models) names += (names.empty() ? "" : ", ") + m.id;
    log::info("group [", group.key, "]: ", names);
  }
}

}  // namespace

Coordinator::Coordinator(Comm& comm, store::Store& store, const label::WorkPlan& plan,
                         const label::LabelOptions& options, StopFlag& stop,
                         const Lifeline& lifeline)
    : comm_(comm),
      store_(store),
      plan_(plan),
      committer_(store, plan, options),
      stop_flag_(stop),
      lifeline_(lifeline),
      scheduler_(make_scheduler(plan, options)),
      progress_(make_progress(plan, options)) {
  log_groups(plan);
}

// The next shard for a rank, without the models that failed meanwhile, or nothing.
std::optional<label::Shard> Coordinator::next(int loaded_group) {
  while (!stopping_) {
    const auto index = scheduler_->next(loaded_group);
    if (!index) return std::nullopt;
    label::Shard shard = plan_.shards[*index];
    for (std::size_t k = shard.models.size(); k-- > 0;) {
      if (committer_.failed(shard.models[k])) {
        shard.models.erase(shard.models.begin() + static_cast<std::ptrdiff_t>(k));
        shard.needed.erase(shard.needed.begin() + static_cast<std::ptrdiff_t>(k));
      }
    }
    if (!shard.models.empty()) return shard;
  }
  return std::nullopt;
}

void Coordinator::accept(const label::ShardResult& result) {
  if (!result.unreadable.empty()) {
    log::error(result.unreadable, " (this shard is skipped; the others go on)");
    unreadable_.push_back(result.unreadable);
  }
  committer_.commit(result);
  std::int64_t images = 0;
  for (const auto& run : result.rows) {
    if (run.kind == store::UnitKind::kImage) images = std::max(images, run.end - run.begin);
  }
  if (progress_) progress_->advance(images);
  // A shard cut short by a stop this rank did not see (another rank's signal whose report is
  // still on its way) still ends the run as interrupted.
  if (result.stopped) stop(stop_flag_.signal() != 0 ? stop_flag_.signal() : SIGTERM);
  // One rank finishes models as they complete (a later kill cannot lose them); several share
  // that work at the end. After a stop, nothing more is computed within the grace period.
  if (comm_.size() == 1 && !stopping_) committer_.finish_complete();
}

void Coordinator::fail(ExitCode code, const std::string& message, int rank) {
  if (!error_) {
    error_ =
        Failure{code, comm_.size() > 1 ? "rank " + std::to_string(rank) + ": " + message : message};
  }
  stop(0);
}

// Stops handing out work and tells this rank's compute thread and every worker in the loop to
// stop after the current batch.
void Coordinator::stop(int signal_number) {
  if (signal_number != 0 && stop_signal_ == 0) stop_signal_ = signal_number;
  if (stopping_) return;
  stopping_ = true;
  stop_flag_.request(stop_signal_ != 0 ? stop_signal_ : SIGTERM);
  for (const int r : active_)
    comm_.send({}, r, kStop, "telling rank " + std::to_string(r) + " to stop");
}

// Results, an error and a request from this rank's compute thread. Returns whether there was any.
bool Coordinator::serve_local(Mailbox& local) {
  bool busy = false;
  for (const auto& result : local.take_results()) {
    accept(result);
    busy = true;
  }
  if (auto failure = local.take_failure()) {
    fail(failure->code, failure->message, 0);
    busy = true;
  }
  if (const auto loaded = local.take_request()) {
    local.answer(next(*loaded));
    busy = true;
  }
  return busy;
}

void Coordinator::answer_request(int rank, int loaded_group) {
  auto shard = next(loaded_group);
  wire::Writer w;
  if (shard) {
    wire::put_shard(w, *shard);
  } else {
    active_.erase(rank);  // an empty assignment ends the worker's loop
  }
  comm_.send(w.buffer(), rank, kAssign, "sending work to rank " + std::to_string(rank));
}

// One message from a worker rank, if one is waiting. Returns whether there was one.
bool Coordinator::serve_remote() {
  const auto envelope = comm_.probe(kAnySource, kAnyTag, "waiting for the worker ranks");
  if (!envelope) return false;
  const int from = envelope->source;
  const std::vector<char> bytes =
      comm_.receive(from, envelope->tag, "receiving from rank " + std::to_string(from));
  wire::Reader r(bytes);
  switch (envelope->tag) {
    case kRequest:
      answer_request(from, r.get<std::int32_t>());
      break;
    case kResult:
      accept(wire::get_result(r));
      break;
    case kError: {
      const auto code = static_cast<ExitCode>(r.get<std::int32_t>());
      fail(code, r.get_string(), from);
      break;
    }
    case kStopRequest:
      stop(r.get<std::int32_t>());
      break;
    default:
      MLL_THROW(InternalError, "unexpected message tag ", envelope->tag, " from rank ", from);
  }
  return true;
}

void Coordinator::run(Mailbox& local) {
  for (int r = 1; r < comm_.size(); ++r) active_.insert(r);
  bool local_active = true;
  while (local_active || !active_.empty()) {
    // First: after a rank died, the launcher's stop signal follows, and no stop can complete.
    lifeline_.throw_if_lost();
    // A signal this process received, once in its log, whichever rank's stop came first.
    if (!signal_logged_ && stop_signal() != 0) {
      signal_logged_ = true;
      log::info("stop signal ", stop_signal(), " received: committing what is computed");
    }
    if (stop_flag_.requested() && !stopping_) stop(stop_flag_.signal());
    bool busy = serve_local(local);
    if (local.drained()) local_active = false;
    busy = serve_remote() || busy;
    if (!busy) local.wait(kPollInterval);
  }
  end_of_run();
}

void Coordinator::end_of_run() {
  if (comm_.size() == 1 && !stopping_) committer_.finish_complete();
  if (progress_) progress_->finish();
  if (error_) throw_error(error_->code, error_->message);
  if (stop_signal_ != 0) {
    MLL_THROW(Interrupted, "stopped by signal ", stop_signal_,
              " after committing the finished rows; rerun the same command to continue");
  }
}

void Coordinator::throw_if_unreadable() const {
  if (unreadable_.empty()) return;
  std::string list;
  for (std::size_t k = 0; k < unreadable_.size() && k < 5; ++k) {
    list += (k ? "; " : "") + unreadable_[k];
  }
  if (unreadable_.size() > 5) list += cat("; and ", unreadable_.size() - 5, " more");
  MLL_THROW(DataError, unreadable_.size(), " shard(s) stopped at a probe image that cannot be ",
            "used (every other shard is stored): ", list,
            ". Fix or restore the images, or rebuild the probe set with `mll probe build ",
            "--verify`, then rerun");
}

void Coordinator::abandon() {
  stopping_ = true;
  for (const int r : active_)
    comm_.send({}, r, kStop, "telling rank " + std::to_string(r) + " to stop");
  while (!active_.empty()) {
    Envelope envelope;
    comm_.receive(kAnySource, kAnyTag, "releasing the worker ranks", &envelope);
    if (envelope.tag == kRequest) {
      comm_.send({}, envelope.source, kAssign, "releasing rank " + std::to_string(envelope.source));
      active_.erase(envelope.source);
    }
  }
}

}  // namespace mll::distributed
