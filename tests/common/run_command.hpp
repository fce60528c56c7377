// Runs a shell command for tests and captures its exit code, stdout and stderr.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "test_paths.hpp"

namespace mll::test {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs `command` through /bin/sh with its output redirected into files of `scratch`.
inline CommandResult run_command(const std::string& command, const ScratchDir& scratch) {
  const std::string out = scratch / "cmd.stdout";
  const std::string err = scratch / "cmd.stderr";
  const int status = std::system((command + " >" + out + " 2>" + err).c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = slurp(out);
  result.err = slurp(err);
  return result;
}

// Runs the mll binary with `args`.
inline CommandResult run_mll(const std::string& args, const ScratchDir& scratch) {
  return run_command(mll_exe() + " " + args, scratch);
}

}  // namespace mll::test
