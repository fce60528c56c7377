#include "worker.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <thread>

#include "mll/core/log.hpp"
#include "protocol.hpp"

namespace mll::distributed {
namespace {

constexpr std::chrono::milliseconds kPollInterval{1};

class Relay {
 public:
  Relay(Comm& comm, Mailbox& mailbox, StopFlag& stop, const Lifeline& lifeline)
      : comm_(comm), mailbox_(mailbox), stop_(stop), lifeline_(lifeline) {}

  // After the relay itself failed: rank 0 learns the error and releases this rank, so that no
  // rank waits for it. Throws CommError.
  void give_up(ExitCode code, const std::string& message) {
    wire::Writer w;
    w.put<std::int32_t>(static_cast<std::int32_t>(code));
    w.put(message);
    comm_.send(w.buffer(), 0, kError, "sending an error to rank 0");
    if (!released_) request_work(-1);
  }

  void run() {
    for (;;) {
      lifeline_.throw_if_lost();
      log_signal();
      report_stop();
      take_stop();
      // The request first: the compute thread posts a result before it asks again, so every
      // result posted before this request is taken (and sent) below, ahead of the request.
      // Rank 0 counts a rank out when it answers "no more work", after which a result sent
      // late would never be received.
      const auto loaded = mailbox_.take_request();
      bool busy = forward_results();
      busy = forward_failure() || busy;
      if (loaded) {
        mailbox_.answer(request_work(*loaded));
        busy = true;
      }
      if (mailbox_.drained()) break;
      if (!busy) mailbox_.wait(kPollInterval);
    }
    // The compute thread ended on an error it already reported: rank 0 answers one more request
    // with "no more work", which lets it count this rank out of the loop.
    if (!released_) request_work(-1);
  }

 private:
  // This rank's own progress, one line per shard, so that its log (--log-dir) shows it.
  static void log_progress(const label::ShardResult& result) {
    std::int64_t first = -1, last = -1;
    std::size_t models = 0;
    for (const auto& run : result.rows) {
      if (first < 0 || run.begin < first) first = run.begin;
      last = std::max(last, run.end);
      ++models;
    }
    if (models == 0) return;
    log::info("computed ", to_string(result.rows.front().kind), " rows [", first, ", ", last,
              ") for ", models, " model run(s), ", result.images_decoded, " images decoded",
              result.stopped ? " (stopped)" : "");
  }

  // A signal this process received, once, in this rank's log (whichever rank's stop comes first).
  void log_signal() {
    if (signal_logged_ || stop_signal() == 0) return;
    signal_logged_ = true;
    log::info("stop signal ", stop_signal(), " received");
  }

  // A stop signal received by this process goes to rank 0, which stops every rank.
  void report_stop() {
    if (stop_reported_ || !stop_.requested()) return;
    wire::Writer w;
    w.put<std::int32_t>(stop_.signal());
    comm_.send(w.buffer(), 0, kStopRequest, "reporting a stop signal to rank 0");
    stop_reported_ = true;
  }

  void take_stop() {
    if (!comm_.probe(0, kStop, "waiting for rank 0")) return;
    comm_.receive(0, kStop, "receiving a stop from rank 0");
    stop_.request(SIGTERM);
    stop_reported_ = true;  // rank 0 already knows
  }

  bool forward_results() {
    bool any = false;
    for (const auto& result : mailbox_.take_results()) {
      log_progress(result);
      wire::Writer w;
      wire::put_result(w, result);
      comm_.send(w.buffer(), 0, kResult, "sending a result to rank 0");
      any = true;
    }
    return any;
  }

  bool forward_failure() {
    const auto failure = mailbox_.take_failure();
    if (!failure) return false;
    wire::Writer w;
    w.put<std::int32_t>(static_cast<std::int32_t>(failure->code));
    w.put(failure->message);
    comm_.send(w.buffer(), 0, kError, "sending an error to rank 0");
    return true;
  }

  // Asks rank 0 for work and waits for the answer (a stop may come first). Nothing means "no
  // more work": this rank is out of the loop.
  std::optional<label::Shard> request_work(int loaded_group) {
    wire::Writer w;
    w.put<std::int32_t>(loaded_group);
    comm_.send(w.buffer(), 0, kRequest, "asking rank 0 for work");
    for (;;) {
      // Polled, not a blocking receive: when rank 0 dies the answer never comes.
      const auto waiting = comm_.probe(0, kAnyTag, "waiting for work from rank 0");
      if (!waiting) {
        lifeline_.throw_if_lost();
        log_signal();
        std::this_thread::sleep_for(kPollInterval);
        continue;
      }
      Envelope envelope;
      const auto bytes = comm_.receive(0, waiting->tag, "waiting for work from rank 0", &envelope);
      if (envelope.tag == kStop) {
        stop_.request(SIGTERM);
        stop_reported_ = true;
        continue;
      }
      MLL_CHECK(envelope.tag == kAssign, "unexpected message tag ", envelope.tag, " from rank 0");
      if (bytes.empty()) {
        released_ = true;
        return std::nullopt;
      }
      wire::Reader r(bytes);
      return wire::get_shard(r);
    }
  }

  Comm& comm_;
  Mailbox& mailbox_;
  StopFlag& stop_;
  const Lifeline& lifeline_;
  bool stop_reported_ = false;
  bool signal_logged_ = false;
  bool released_ = false;
};

}  // namespace

void work(Comm& comm, Mailbox& mailbox, StopFlag& stop, const Lifeline& lifeline) {
  Relay relay(comm, mailbox, stop, lifeline);
  try {
    relay.run();
  } catch (const CommError&) {
    throw;  // the transport itself failed: nothing more can reach rank 0
  } catch (const Error& e) {
    relay.give_up(e.code(), e.what());
    throw;
  } catch (const std::exception& e) {
    relay.give_up(ExitCode::kInternal, e.what());
    throw;
  }
}

}  // namespace mll::distributed
