// The `mll` command line: `mll <command> [options]`.
//
// The only module that includes Boost.Program_options. Commands are listed by `mll --help`;
// options come from the command line and, with -c FILE, from an INI file whose section names
// the command ([graph.build]); the command line wins.
#pragma once

namespace mll::cli {

// Parses argv, runs the command and returns the process exit code (docs/errors.md). Every
// exception is caught here and reported as one line on stderr. Collective when the command is
// (the MPI commands); never throws.
int run(int argc, char** argv) noexcept;

}  // namespace mll::cli
