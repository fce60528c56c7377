#include "mll/core/progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace mll {

Progress::Progress(std::string label, std::int64_t total, std::string unit, double interval_seconds)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      interval_(interval_seconds),
      tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

Progress::~Progress() { finish(); }

void Progress::advance(std::int64_t amount) {
  done_ += amount;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (since >= (tty_ ? 0.2 : interval_)) {
    last_print_ = now;
    print(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  print(true);
}

std::string Progress::human(double value) {
  char buffer[32];
  if (value >= 1e9) {
    std::snprintf(buffer, sizeof buffer, "%.1fG", value / 1e9);
  } else if (value >= 1e6) {
    std::snprintf(buffer, sizeof buffer, "%.1fM", value / 1e6);
  } else if (value >= 1e4) {
    std::snprintf(buffer, sizeof buffer, "%.1fk", value / 1e3);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.4g", value);
  }
  return buffer;
}

std::string Progress::duration(double seconds) {
  char buffer[32];
  const long s = static_cast<long>(seconds + 0.5);
  if (s >= 3600) {
    std::snprintf(buffer, sizeof buffer, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  } else if (s >= 60) {
    std::snprintf(buffer, sizeof buffer, "%ldm%02lds", s / 60, s % 60);
  } else {
    std::snprintf(buffer, sizeof buffer, "%lds", s);
  }
  return buffer;
}

void Progress::print(bool final) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  const double fraction =
      total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  const std::string eta =
      rate > 0 && done_ < total_ ? duration(static_cast<double>(total_ - done_) / rate) : "-";
  char line[256];
  if (tty_) {
    const int width = 30;
    const int filled = static_cast<int>(fraction * width);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(width, '.');
    std::snprintf(line, sizeof line, "\r%s [%s] %lld/%lld %s, %s/s, ETA %s%s", label_.c_str(),
                  bar.c_str(), static_cast<long long>(done_), static_cast<long long>(total_),
                  unit_.c_str(), human(rate).c_str(), eta.c_str(), final ? "\n" : "  ");
  } else {
    std::snprintf(line, sizeof line, "%s: %lld/%lld %s (%.0f%%), %s/s, %s, ETA %s\n",
                  label_.c_str(), static_cast<long long>(done_), static_cast<long long>(total_),
                  unit_.c_str(), 100.0 * fraction, human(rate).c_str(), duration(elapsed).c_str(),
                  eta.c_str());
  }
  std::fputs(line, stderr);
  std::fflush(stderr);
}

}  // namespace mll
