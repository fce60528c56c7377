#include "mll/core/log.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>

namespace mll::log {
namespace {

std::atomic<Level> g_level{Level::kInfo};

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::kTrace:
      return spdlog::level::trace;
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
    case Level::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

// The logger is created on first use so that static initialisation order never matters.
struct State {
  std::mutex mutex;
  std::shared_ptr<spdlog::logger> logger;
  int rank = -1;

  State() {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    logger = std::make_shared<spdlog::logger>("mll", sink);
    logger->set_level(spdlog::level::trace);
    apply_pattern();
  }
  void apply_pattern() {
    const std::string rank_tag = rank >= 0 ? "[rank " + std::to_string(rank) + "] " : "";
    logger->set_pattern("%H:%M:%S.%e " + rank_tag + "%^%l%$: %v");
  }
};

State& state() {
  static State s;
  return s;
}

}  // namespace

void set_level(Level level) noexcept { g_level = level; }
Level level() noexcept { return g_level; }

Level parse_level(const std::string& name) {
  if (name == "trace") return Level::kTrace;
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn") return Level::kWarn;
  if (name == "error") return Level::kError;
  if (name == "off") return Level::kOff;
  MLL_THROW(UsageError, "unknown log level '", name,
            "' (expected trace, debug, info, warn, error or off)");
}

void set_rank(int rank) noexcept {
  State& s = state();
  std::lock_guard lock(s.mutex);
  s.rank = rank;
  s.apply_pattern();
}

void set_file(const std::string& path) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  auto& sinks = s.logger->sinks();
  if (sinks.size() > 1) sinks.resize(1);
  if (path.empty()) return;
  // spdlog would create missing directories; a mistyped path should be an error instead.
  const auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty() && !std::filesystem::is_directory(parent, ec)) {
    MLL_THROW(IoError, path, ": cannot open log file: directory '", parent.string(),
              "' does not exist");
  }
  try {
    sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(path));
  } catch (const spdlog::spdlog_ex& e) {
    MLL_THROW(IoError, path, ": cannot open log file: ", e.what());
  }
  s.apply_pattern();
}

void write(Level level, const std::string& message) noexcept {
  try {
    State& s = state();
    std::lock_guard lock(s.mutex);
    s.logger->log(to_spdlog(level), message);
    if (level >= Level::kWarn) s.logger->flush();
  } catch (...) {
    // Logging must never take the program down.
  }
}

}  // namespace mll::log
