#include "mll/core/signals.hpp"

#include <atomic>

namespace mll {
namespace {

std::atomic<int> g_stop_signal{0};
constexpr int kSignals[3] = {SIGTERM, SIGUSR1, SIGINT};

extern "C" void on_stop_signal(int signal_number) {
  // Only async-signal-safe work here: a lock-free atomic store.
  g_stop_signal.store(signal_number, std::memory_order_relaxed);
}

}  // namespace

StopSignals::StopSignals() noexcept {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &action, &previous_[i]);
}

StopSignals::~StopSignals() {
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &previous_[i], nullptr);
}

bool stop_requested() noexcept { return g_stop_signal.load(std::memory_order_relaxed) != 0; }
int stop_signal() noexcept { return g_stop_signal.load(std::memory_order_relaxed); }
void reset_stop() noexcept { g_stop_signal.store(0); }
void request_stop(int signal_number) noexcept { g_stop_signal.store(signal_number); }

}  // namespace mll
