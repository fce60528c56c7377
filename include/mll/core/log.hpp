// Levelled logging to stderr.
//
// A thin facade so that the logging library stays private to the core module. Messages are one
// line each, prefixed with the time, the level and, under MPI, the rank. Thread-safe; nothing here
// is collective and nothing throws (a failed log write is dropped, never fatal).
#pragma once

#include <string>

#include "mll/core/error.hpp"

namespace mll::log {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kOff };

// Sets the threshold; messages below it are discarded. Default: kInfo.
void set_level(Level level) noexcept;
Level level() noexcept;

// Parses "trace", "debug", "info", "warn", "error" or "off". Throws UsageError otherwise.
Level parse_level(const std::string& name);

// Tags every later line with "[rank R]"; used by the MPI layer. A negative rank removes the tag.
void set_rank(int rank) noexcept;

// Additionally writes every line to a file (per-rank logs); an empty path stops that.
// Throws IoError when the file cannot be opened.
void set_file(const std::string& path);

void write(Level level, const std::string& message) noexcept;

template <typename... Args>
void trace(Args&&... args) {
  if (level() <= Level::kTrace) write(Level::kTrace, cat(std::forward<Args>(args)...));
}
template <typename... Args>
void debug(Args&&... args) {
  if (level() <= Level::kDebug) write(Level::kDebug, cat(std::forward<Args>(args)...));
}
template <typename... Args>
void info(Args&&... args) {
  if (level() <= Level::kInfo) write(Level::kInfo, cat(std::forward<Args>(args)...));
}
template <typename... Args>
void warn(Args&&... args) {
  if (level() <= Level::kWarn) write(Level::kWarn, cat(std::forward<Args>(args)...));
}
template <typename... Args>
void error(Args&&... args) {
  if (level() <= Level::kError) write(Level::kError, cat(std::forward<Args>(args)...));
}

}  // namespace mll::log
