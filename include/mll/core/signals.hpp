// Cooperative stop on SIGTERM / SIGUSR1 / SIGINT (Slurm's preemption and time-limit warnings,
// or Ctrl-C). The handler only sets a flag; long-running loops poll stop_requested() at safe
// points, commit what they have, and exit with ExitCode::kInterrupted (75).
#pragma once

#include <atomic>
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
// Records `signal_number` as if it had just arrived (a signal the mll executable caught before
// the library was loaded). Never throws.
void record_stop(int signal_number) noexcept;
// Gives SIGTERM, SIGUSR1 and SIGINT their default actions (for commands that do not stop at
// safe points). What was recorded stays recorded. Never throws.
void restore_default_stop_signals() noexcept;

// One rank's stop request: raised by a stop signal to the process, or by request() (the
// coordinator telling this rank to stop, which must not stop other ranks sharing the process in
// tests). Long loops poll requested() at safe points. Thread-safe; never throws.
class StopFlag {
 public:
  StopFlag() = default;
  virtual ~StopFlag() = default;
  StopFlag(const StopFlag&) = delete;
  StopFlag& operator=(const StopFlag&) = delete;

  // True after request() or a stop signal. Virtual so that tests can stop a rank at a chosen
  // poll, which a real signal cannot do for one thread.
  virtual bool requested() const noexcept;
  // The signal that asked to stop: request()'s, else the process's, else 0.
  int signal() const noexcept;
  void request(int signal_number) noexcept;

 private:
  std::atomic<int> requested_{0};
};

}  // namespace mll
