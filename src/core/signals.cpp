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
void record_stop(int signal_number) noexcept {
  int expected = 0;
  g_stop_signal.compare_exchange_strong(expected, signal_number);
}

void restore_default_stop_signals() noexcept {
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  for (const int s : kSignals) sigaction(s, &action, nullptr);
}

bool StopFlag::requested() const noexcept {
  return requested_.load(std::memory_order_relaxed) != 0 || stop_requested();
}

int StopFlag::signal() const noexcept {
  const int own = requested_.load(std::memory_order_relaxed);
  return own != 0 ? own : stop_signal();
}

void StopFlag::request(int signal_number) noexcept {
  int expected = 0;
  requested_.compare_exchange_strong(expected, signal_number);
}

}  // namespace mll
