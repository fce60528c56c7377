// How many CPUs, and how much memory, this process may use (design.md "Distribution": CPU counts
// come from what the process may use, not from the machine). std::thread::hardware_concurrency()
// counts the machine's cores: under `srun -c 4` on a 128-core node it says 128. Nothing here is
// collective or throws.
#pragma once

#include <cstdint>
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

struct MemoryAvailable {
  std::int64_t bytes = 0;  // 0: unknown
  std::string source;      // "MemAvailable", "cgroup memory.max", "SLURM_MEM_PER_NODE", ...
};

// The host memory this process may still take: the smallest of /proc/meminfo's MemAvailable, the
// room left under its cgroup's limit (v2 memory.max - memory.current in this cgroup or an
// ancestor, or v1 memory.limit_in_bytes - memory.usage_in_bytes), and Slurm's allocation
// (SLURM_MEM_PER_NODE, or SLURM_MEM_PER_CPU x the CPU budget; megabytes) when set. The default
// memory budget of labeling on the CPU starts from it.
MemoryAvailable available_memory() noexcept;

}  // namespace mll
