// Private to the cli module: how a command is described and registered.
#pragma once

#include <boost/program_options.hpp>

#include <functional>
#include <string>
#include <vector>

#include "mll/distributed/session.hpp"

namespace mll::cli {

namespace po = boost::program_options;

struct Command {
  std::string name;     // words as typed: "graph build"
  std::string summary;  // one line for `mll --help`
  std::string usage;    // synopsis after "mll <name> "
  // Adds the command's options; `positional` receives its positional arguments in order.
  std::function<void(po::options_description&, po::positional_options_description&)> options;
  // Runs the command; returns the exit code (0 on success). Errors are thrown. The Session is
  // the process's MPI lifetime (owned by cli::run), for the commands that run on several ranks.
  std::function<int(const po::variables_map&, distributed::Session&)> run;
  // Whether the command commits work and stops at safe points on SIGTERM / SIGUSR1 / SIGINT
  // (exit 75); other commands get the signals' default actions once they start.
  bool commits = false;
  // One typical invocation, shown by `mll <command> --help`.
  std::string example = {};
};

// Each commands_*.cpp file contributes its commands here.
void add_graph_commands(std::vector<Command>& commands);
void add_demo_commands(std::vector<Command>& commands);
void add_zoo_commands(std::vector<Command>& commands);
void add_debug_commands(std::vector<Command>& commands);
void add_store_commands(std::vector<Command>& commands);
void add_select_commands(std::vector<Command>& commands);
void add_synth_commands(std::vector<Command>& commands);
void add_plan_commands(std::vector<Command>& commands);
void add_report_commands(std::vector<Command>& commands);

}  // namespace mll::cli
