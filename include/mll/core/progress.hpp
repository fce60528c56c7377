// Progress of a long job on stderr: a bar redrawn in place on a terminal, plain lines every
// `interval` seconds otherwise (logs, Slurm output files). Shows done / total, rate and ETA.
// Not thread-safe: one owner calls advance(). Nothing throws.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace mll {

class Progress {
 public:
  Progress(std::string label, std::int64_t total, std::string unit, double interval_seconds = 10.0);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(std::int64_t amount);
  // Prints the final line (called by the destructor if not before).
  void finish();

  // "1.2k", "3.4M": for rates and counts.
  static std::string human(double value);
  // "1h02m", "3m05s", "12s".
  static std::string duration(double seconds);

 private:
  void print(bool final);

  std::string label_;
  std::string unit_;
  std::int64_t total_;
  std::int64_t done_ = 0;
  double interval_;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_print_;
};

}  // namespace mll
