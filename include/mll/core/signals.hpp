// Cooperative stop on SIGTERM / SIGUSR1 / SIGINT (Slurm's preemption and time-limit warnings,
// or Ctrl-C). The handler only sets a flag; long-running loops poll stop_requested() at safe
// points, commit what they have, and exit with ExitCode::kInterrupted (75).
#pragma once

#include <csignal>

namespace mll {

// Installs the handlers for its lifetime and restores the previous ones afterwards (RAII).
// Not copyable. Nothing here throws; not collective (the MPI layer spreads a stop to all ranks).
class StopSignals {
 public:
  StopSignals() noexcept;
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction previous_[3];
};

// True once one of the signals arrived (while a StopSignals was alive).
bool stop_requested() noexcept;
// The signal number that asked to stop, or 0.
int stop_signal() noexcept;
// Clears the flag (tests).
void reset_stop() noexcept;
// Sets the flag as a signal would (used when another rank asked to stop).
void request_stop(int signal_number) noexcept;

}  // namespace mll
