// How many CPUs this process may use (design.md "Distribution": CPU counts come from what the
// process may use, not from the machine). std::thread::hardware_concurrency() counts the
// machine's cores: under `srun -c 4` on a 128-core node it says 128. Nothing here is collective
// or throws.
#pragma once

#include <string>

namespace mll {

struct CpuBudget {
  int cpus = 1;        // at least 1
  std::string source;  // what set it: "affinity", "cgroup cpu.max", "SLURM_CPUS_PER_TASK", ...
};

// The smallest of: the CPUs in this process's affinity mask, its cgroup's CPU quota (v2
// cpu.max, or v1 cpu.cfs_quota_us / cpu.cfs_period_us, rounded up), and SLURM_CPUS_PER_TASK
// when set. Computed on every call (cheap: a few small files).
CpuBudget usable_cpus() noexcept;

// The budget's count. Every default thread count of mll starts from it.
int usable_cpu_count() noexcept;

// A thread-count variable a numerical library honours (OMP_NUM_THREADS, then MKL_NUM_THREADS)
// when set to a positive integer, else 0: a cap on the model's threads. Never throws.
int numeric_library_threads() noexcept;

}  // namespace mll
