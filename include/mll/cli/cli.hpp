// The `mll` command line: `mll <command> [options]`.
//
// The only module that includes Boost.Program_options. Commands are listed by `mll --help`;
// options come from the command line and, with -c FILE, from an INI file whose section names
// the command ([graph.build]); the command line wins.
#pragma once

#include <csignal>

namespace mll::cli {

// Parses argv, runs the command and returns the process exit code (docs/errors.md). Every
// exception is caught here and reported as one line on stderr. Collective when the command is
// (the MPI commands); never throws. `early_signal` (may be null) holds a stop signal the
// executable recorded before this library was loaded: it counts as received now. Stop signals
// are handled for the whole run: commands that commit work (label, run) stop at a safe point
// and exit 75; a signal before any other command starts exits 75 with nothing done; other
// commands get the signals' default actions once they start.
int run(int argc, char** argv, const volatile sig_atomic_t* early_signal = nullptr) noexcept;

}  // namespace mll::cli
