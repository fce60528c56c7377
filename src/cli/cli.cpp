#include "mll/cli/cli.hpp"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <new>
#include <sstream>

#include "command.hpp"
#include "mll/core/error.hpp"
#include "mll/core/log.hpp"
#include "mll/core/signals.hpp"
#include "mll/core/version.hpp"
#include "mll/distributed/session.hpp"

namespace mll::cli {
namespace {

std::vector<Command> all_commands() {
  std::vector<Command> commands;
  add_graph_commands(commands);
  add_zoo_commands(commands);
  add_store_commands(commands);
  add_select_commands(commands);
  add_synth_commands(commands);
  add_plan_commands(commands);
  add_report_commands(commands);
  add_debug_commands(commands);
  add_demo_commands(commands);
  return commands;
}

std::vector<std::string> words_of(const std::string& name) {
  std::istringstream in(name);
  std::vector<std::string> words;
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

void print_global_help(std::ostream& out, const std::vector<Command>& commands) {
  out << "mll " << version() << ": Model Label Learning for vision-language model zoos\n\n"
      << "usage: mll <command> [options]\n"
      << "       mll <command> --help     options of one command, with defaults and units\n"
      << "       mll --version\n\ncommands:\n";
  std::size_t width = 0;
  for (const auto& c : commands) width = std::max(width, c.name.size());
  for (const auto& c : commands) {
    out << "  " << c.name << std::string(width - c.name.size() + 3, ' ') << c.summary << "\n";
  }
  out << "\nCommon options of every command: -c/--config FILE (INI, a [section] per command,\n"
      << "e.g. [graph.build]; the command line wins), -v/--verbose, --log-level, --log-file.\n"
      << "Exit codes: 0 ok, 64 usage, 65 bad data, 70 internal, 74 I/O, 75 interrupted "
         "(requeue).\n";
}

po::options_description common_options() {
  po::options_description common("Common options");
  common.add_options()("help,h", "show this help and exit")(
      "config,c", po::value<std::string>()->value_name("FILE"),
      "read options from an INI file; section [<command with dots>], e.g. [graph.build]")(
      "verbose,v", po::bool_switch(), "log debug messages (same as --log-level debug)")(
      "log-level", po::value<std::string>()->default_value("info")->value_name("LEVEL"),
      "trace, debug, info, warn, error or off")(
      "log-file", po::value<std::string>()->value_name("FILE"), "also write the log to FILE");
  return common;
}

// Applies the config file's keys for `command` (and its unsectioned keys) as if they were given
// on the command line after the real arguments, so that the real arguments win.
void apply_config(const std::string& path, const Command& command,
                  const po::options_description& options, const std::vector<Command>& commands,
                  po::variables_map& vm) {
  std::ifstream in(path);
  if (!in) MLL_THROW(DataError, path, ": config file not found or unreadable");
  po::options_description none;
  po::parsed_options parsed(nullptr);
  try {
    parsed = po::parse_config_file(in, none, /*allow_unregistered=*/true);
  } catch (const po::error& e) {
    MLL_THROW(UsageError, path, ": ", e.what());
  }
  std::string section = command.name;
  std::replace(section.begin(), section.end(), ' ', '.');
  std::vector<std::string> tokens;
  for (const auto& option : parsed.options) {
    const std::string& key = option.string_key;
    const auto dot = key.rfind('.');
    const std::string key_section = dot == std::string::npos ? "" : key.substr(0, dot);
    const std::string name = dot == std::string::npos ? key : key.substr(dot + 1);
    if (!key_section.empty() && key_section != section) {
      const bool known = std::any_of(commands.begin(), commands.end(), [&](const Command& c) {
        std::string s = c.name;
        std::replace(s.begin(), s.end(), ' ', '.');
        return s == key_section;
      });
      if (!known) MLL_THROW(UsageError, path, ": unknown section [", key_section, "]");
      continue;  // another command's settings
    }
    const auto* description = options.find_nothrow(name, /*approx=*/false);
    if (description == nullptr) {
      if (key_section.empty()) continue;  // an unsectioned key for other commands
      MLL_THROW(UsageError, path, ": [", section, "] unknown option '", name, "'");
    }
    if (name == "config") MLL_THROW(UsageError, path, ": a config file cannot include another");
    const std::string value = option.value.empty() ? "" : option.value.front();
    if (description->semantic()->max_tokens() == 0) {
      if (value == "true" || value == "1" || value == "yes" || value == "on") {
        tokens.push_back("--" + name);
      } else if (!(value == "false" || value == "0" || value == "no" || value == "off")) {
        MLL_THROW(UsageError, path, ": option '", name, "' expects true or false, not '", value,
                  "'");
      }
    } else {
      tokens.push_back("--" + name + "=" + value);
    }
  }
  try {
    po::store(po::command_line_parser(tokens).options(options).run(), vm);
  } catch (const po::error& e) {
    MLL_THROW(UsageError, path, ": ", e.what());
  }
}

int run_unchecked(int argc, char** argv, distributed::Session& session, bool* verbose) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const std::vector<Command> commands = all_commands();
  if (args.empty()) {
    print_global_help(std::cerr, commands);
    return static_cast<int>(ExitCode::kUsage);
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_global_help(std::cout, commands);
    return 0;
  }
  if (args[0] == "--version") {
    std::cout << "mll " << version() << "\n";
    return 0;
  }
  if (args[0].rfind("-", 0) == 0) {
    MLL_THROW(UsageError, "expected a command before '", args[0], "' (see mll --help)");
  }

  // The command is the longest registered word sequence that starts the arguments.
  const Command* command = nullptr;
  std::size_t consumed = 0;
  for (const auto& c : commands) {
    const auto words = words_of(c.name);
    if (words.size() > consumed && words.size() <= args.size() &&
        std::equal(words.begin(), words.end(), args.begin())) {
      command = &c;
      consumed = words.size();
    }
  }
  if (command == nullptr) {
    std::vector<std::string> subcommands;
    for (const auto& c : commands) {
      const auto words = words_of(c.name);
      if (words.size() > 1 && words[0] == args[0]) subcommands.push_back(words[1]);
    }
    if (!subcommands.empty()) {
      std::string list;
      for (const auto& s : subcommands) list += (list.empty() ? "" : ", ") + s;
      const std::string got = args.size() > 1 ? "unknown subcommand '" + args[1] + "'"
                                              : std::string("missing subcommand");
      MLL_THROW(UsageError, "mll ", args[0], ": ", got, " (expected one of: ", list, ")");
    }
    MLL_THROW(UsageError, "unknown command '", args[0], "' (see mll --help)");
  }

  po::options_description specific("Options of mll " + command->name);
  po::positional_options_description positional;
  command->options(specific, positional);
  po::options_description all;
  all.add(specific).add(common_options());

  po::variables_map vm;
  const std::vector<std::string> rest(args.begin() + static_cast<long>(consumed), args.end());
  try {
    po::store(po::command_line_parser(rest).options(all).positional(positional).run(), vm);
  } catch (const po::error& e) {
    MLL_THROW(UsageError, "mll ", command->name, ": ", e.what(), " (see mll ", command->name,
              " --help)");
  }
  if (vm.count("help")) {
    std::cout << "usage: mll " << command->name << " " << command->usage << "\n\n"
              << command->summary << "\n\n"
              << "example: " << command->example << "\n\n"
              << all << "\n";
    return 0;
  }
  if (vm.count("config")) {
    apply_config(vm["config"].as<std::string>(), *command, all, commands, vm);
  }
  try {
    po::notify(vm);
  } catch (const po::error& e) {
    MLL_THROW(UsageError, "mll ", command->name, ": ", e.what(), " (see mll ", command->name,
              " --help)");
  }
  *verbose = vm["verbose"].as<bool>();
  log::set_level(*verbose ? log::Level::kDebug
                          : log::parse_level(vm["log-level"].as<std::string>()));
  if (vm.count("log-file")) log::set_file(vm["log-file"].as<std::string>());
  if (!command->commits) {
    // Only commands that commit work stop at safe points; the others get the signals' default
    // actions, once a signal that came before they started has ended them.
    restore_default_stop_signals();
    if (stop_requested()) {
      MLL_THROW(Interrupted, "stopped by signal ", stop_signal(), " before mll ", command->name,
                " started: nothing was done; rerun the same command");
    }
  }
  return command->run(vm, session);
}

}  // namespace

int run(int argc, char** argv, const volatile sig_atomic_t* early_signal) noexcept {
  // Stop signals are recorded from here on; one the executable saw while this library loaded
  // counts as received now.
  const StopSignals signals;
  if (early_signal != nullptr && *early_signal != 0) record_stop(*early_signal);
  bool verbose = false;
  // MPI, when a command starts it, lives until every error below has been reported.
  distributed::Session session;
  try {
    return run_unchecked(argc, argv, session, &verbose);
  } catch (const Error& e) {
    // Under MPI every rank ends with the same error; rank 0 alone reports it. A lost rank is
    // reported by every survivor (the lost one may be rank 0).
    const bool lost_rank = dynamic_cast<const distributed::PeerLost*>(&e) != nullptr;
    if (session.rank() != 0 && !lost_rank) return static_cast<int>(e.code());
    std::cerr << "mll: error: " << e.what();
    if (verbose && e.line() > 0) std::cerr << " [" << e.file() << ":" << e.line() << "]";
    std::cerr << std::endl;
    return static_cast<int>(e.code());
  } catch (const std::bad_alloc&) {
    std::cerr << "mll: error: out of memory" << std::endl;
    return static_cast<int>(ExitCode::kInternal);
  } catch (const std::exception& e) {
    std::cerr << "mll: internal error: " << e.what() << std::endl;
    return static_cast<int>(ExitCode::kInternal);
  } catch (...) {
    std::cerr << "mll: internal error: unknown exception" << std::endl;
    return static_cast<int>(ExitCode::kInternal);
  }
}

}  // namespace mll::cli
