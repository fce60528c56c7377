#include "compute.hpp"

namespace mll::distributed {
namespace {

void compute(label::Executor& executor, Mailbox& mailbox, const StopFlag& stop) noexcept {
  try {
    while (auto shard = mailbox.ask(executor.loaded_group())) {
      mailbox.post(executor.run(*shard, stop));
    }
  } catch (const Error& e) {
    mailbox.fail(Failure{e.code(), e.what()});
  } catch (const std::exception& e) {
    mailbox.fail(Failure{ExitCode::kInternal, e.what()});
  }
  mailbox.finish();
}

}  // namespace

ComputeThread::ComputeThread(label::Executor& executor, Mailbox& mailbox, StopFlag& stop)
    : mailbox_(mailbox), stop_(stop), thread_([&] { compute(executor, mailbox, stop); }) {}

ComputeThread::~ComputeThread() {
  mailbox_.close();
  if (!mailbox_.drained()) stop_.request(SIGTERM);  // leaving early: do not finish the shard
  thread_.join();
}

}  // namespace mll::distributed
