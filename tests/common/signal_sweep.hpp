// The signal sweep of the cluster contract (docs/running.md, "Signals"): a stop signal at chosen
// moments after exec must end `mll label` with 75 (or 0 when it had already finished), and a
// rerun must complete the store.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace mll::test {

// Milliseconds after exec at which the sweep signals.
inline const std::vector<int>& sweep_delays_ms() {
  static const std::vector<int> delays = {0, 50, 100, 250, 500, 1000, 2000, 3000};
  return delays;
}

// Starts `command` under /bin/sh with SIGTERM, SIGUSR1 and SIGINT blocked until the program
// unblocks them: a signal sent right after the fork stays pending across exec instead of
// hitting the shell, so "0 ms after exec" reaches mll itself.
inline pid_t spawn_with_stop_signals_blocked(const std::string& command, const std::string& log) {
  // Blocked before the fork, so that the child has them blocked from its first instant.
  sigset_t block, previous;
  sigemptyset(&block);
  for (const int s : {SIGTERM, SIGUSR1, SIGINT}) sigaddset(&block, s);
  sigprocmask(SIG_BLOCK, &block, &previous);
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", ("exec " + command + " >" + log + " 2>&1").c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  sigprocmask(SIG_SETMASK, &previous, nullptr);
  return pid;
}

// Whether `pid` catches `signal_number` (its handler is installed: /proc/PID/status SigCgt).
inline bool catches(pid_t pid, int signal_number) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("SigCgt:", 0) != 0) continue;
    const unsigned long long mask = std::stoull(line.substr(7), nullptr, 16);
    return (mask >> (signal_number - 1)) & 1ULL;
  }
  return false;
}

inline int exit_status(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

inline void sleep_until(std::chrono::steady_clock::time_point when) {
  std::this_thread::sleep_until(when);
}

inline const char* signal_name(int s) { return s == SIGTERM ? "TERM" : "USR1"; }

}  // namespace mll::test
