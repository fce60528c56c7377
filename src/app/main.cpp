// mll: the command-line entry point. A stop signal (Slurm's preemption warning) may arrive at
// any moment, also while the shared libraries behind MPI and HDF5 (and later libtorch's ~290)
// load, which happens before any code of a normally linked program runs. So this
// executable links nothing but the C and C++ runtimes: its first instructions install handlers
// that record SIGTERM, SIGUSR1 and SIGINT (and unblock them, should the parent have blocked
// them), then it loads the rest of mll (libmll_app.so, beside it or in ../lib/mll) and runs it
// with the signal recorded so far, and ends the process without running static destructors.
// Exit code 70 when the library cannot be loaded.
#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

volatile sig_atomic_t g_early_signal = 0;

extern "C" void on_early_signal(int signal_number) {
  if (g_early_signal == 0) g_early_signal = signal_number;
}

void record_stop_signals() {
  struct sigaction action {};
  action.sa_handler = on_early_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigset_t unblock;
  sigemptyset(&unblock);
  for (const int s : {SIGTERM, SIGUSR1, SIGINT}) {
    sigaction(s, &action, nullptr);
    sigaddset(&unblock, s);
  }
  sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
}

std::string executable_dir() {
  char path[PATH_MAX] = {};
  const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n <= 0) return ".";
  std::string exe(path, static_cast<std::size_t>(n));
  return exe.substr(0, exe.rfind('/'));
}

}  // namespace

int main(int argc, char** argv) {
  record_stop_signals();
  // libgomp, libtorch's OpenMP runtime, reads its wait policy once, when the model engine loads.
  // Passive workers sleep between parallel regions instead of spinning on cores that the decode
  // threads, OpenBLAS's threads and the node's other ranks need (a warm-cache run's libgomp
  // worker spun for as much CPU as the model's own work: docs/benchmarks.md, "Nothing to
  // decode ..."). Set here, before any thread exists; a value the user set is kept.
  setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
  using AppMain = int (*)(int, char**, const volatile sig_atomic_t*);
  const std::string dir = executable_dir();
  std::string tried;
  // RTLD_GLOBAL: Open MPI's plugins, loaded later, need libmpi's symbols in the global scope.
  for (const std::string& path : {dir + "/libmll_app.so", dir + "/../lib/mll/libmll_app.so"}) {
    void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (library == nullptr) {
      tried += (tried.empty() ? "" : "; ") + std::string(dlerror());
      continue;
    }
    const auto app_main = reinterpret_cast<AppMain>(dlsym(library, "mll_app_main"));
    if (app_main == nullptr) {
      std::fprintf(stderr, "mll: error: %s has no mll_app_main\n", path.c_str());
      return 70;
    }
    const int code = app_main(argc, argv, &g_early_signal);
    // mll has closed what it opened by now (the store, MPI). Left at exit are the libraries'
    // static destructors and atexit handlers, which only free memory: libtorch deregisters its
    // thousands of operators one by one, ~0.1 s of one core after every command that ran a
    // model. Flushed output is all that must outlive the process.
    std::fflush(nullptr);
    _exit(code);
  }
  std::fprintf(stderr, "mll: error: cannot load the mll library: %s\n", tried.c_str());
  return 70;
}
