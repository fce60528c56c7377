// Private to the distributed module: a rank's compute thread. It asks the Mailbox for shards,
// runs them on the Executor and posts the results until there is no more work; an error ends it
// (posted as a Failure). The destructor stops and joins it, whatever state the run is in.
#pragma once

#include <thread>

#include "mailbox.hpp"
#include "mll/core/signals.hpp"
#include "mll/label/job.hpp"

namespace mll::distributed {

class ComputeThread {
 public:
  // `executor`, `mailbox` and `stop` must outlive this object.
  ComputeThread(label::Executor& executor, Mailbox& mailbox, StopFlag& stop);
  // Closes the mailbox, asks the executor to stop after its batch and joins. Never throws.
  ~ComputeThread();
  ComputeThread(const ComputeThread&) = delete;
  ComputeThread& operator=(const ComputeThread&) = delete;

 private:
  Mailbox& mailbox_;
  StopFlag& stop_;
  std::thread thread_;
};

}  // namespace mll::distributed
