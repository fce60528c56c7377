// mll: the command-line entry point. Everything happens in the cli module.
#include "mll/cli/cli.hpp"

int main(int argc, char** argv) { return mll::cli::run(argc, argv); }
