// The entry point of libmll_app.so, called by the mll executable once the library is loaded
// (main.cpp says why the two are apart).
#include <csignal>

#include "mll/cli/cli.hpp"

extern "C" __attribute__((visibility("default"))) int mll_app_main(
    int argc, char** argv, const volatile sig_atomic_t* early_signal) {
  return mll::cli::run(argc, argv, early_signal);
}
