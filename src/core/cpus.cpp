#include "mll/core/cpus.hpp"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace mll {
namespace {

int positive(const char* text) {
  if (text == nullptr) return 0;
  char* end = nullptr;
  const long n = std::strtol(text, &end, 10);
  return end != text && *end == '\0' && n > 0 && n < (1 << 20) ? static_cast<int>(n) : 0;
}

int affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) {
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  return std::max(1, CPU_COUNT(&set));
}

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// This process's cgroup path for `controller` ("" for v2's unified line "0::/path").
std::string cgroup_path(const std::string& controller) {
  std::ifstream in("/proc/self/cgroup");
  for (std::string line; std::getline(in, line);) {
    const auto first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    std::stringstream list(controllers);
    bool match = controller.empty() && controllers.empty();
    for (std::string c; !match && std::getline(list, c, ',');) match = c == controller;
    if (match) return line.substr(second + 1);
  }
  return "";
}

// CPUs allowed by a quota/period pair, rounded up; 0 when unlimited or unknown.
int quota_cpus(double quota, double period) {
  if (quota <= 0 || period <= 0) return 0;
  return std::max(1, static_cast<int>(std::ceil(quota / period)));
}

int cgroup_cpus() {
  // v2: cpu.max is "max 100000" or "<quota> <period>", in this cgroup or an ancestor.
  for (std::string path = cgroup_path(""); !path.empty();) {
    std::istringstream max(read_line("/sys/fs/cgroup" + path + "/cpu.max"));
    std::string quota;
    double period = 0;
    if (max >> quota >> period && quota != "max")
      return quota_cpus(std::atof(quota.c_str()), period);
    if (path == "/") break;
    path = path.substr(0, std::max<std::size_t>(1, path.rfind('/')));
  }
  // v1
  const std::string v1 = cgroup_path("cpu");
  for (const std::string root : {"/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"}) {
    const std::string quota = read_line(root + v1 + "/cpu.cfs_quota_us");
    const std::string period = read_line(root + v1 + "/cpu.cfs_period_us");
    if (!quota.empty() && !period.empty()) {
      return quota_cpus(std::atof(quota.c_str()), std::atof(period.c_str()));
    }
  }
  return 0;
}

// A whole number of bytes in a file's first line ("max" or garbage: -1).
std::int64_t read_bytes(const std::string& path) {
  const std::string line = read_line(path);
  char* end = nullptr;
  const long long n = std::strtoll(line.c_str(), &end, 10);
  return !line.empty() && end != line.c_str() && (*end == '\0' || *end == '\n') && n >= 0 ? n : -1;
}

std::int64_t meminfo_available() {
  std::ifstream in("/proc/meminfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string key;
    long long kib = 0;
    if (fields >> key >> kib && key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

// Room left under the tightest cgroup memory limit on the way up; 0 when there is none.
std::int64_t cgroup_memory_left() {
  std::int64_t best = 0;
  const auto consider = [&](std::int64_t limit, std::int64_t used) {
    // v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX pages).
    if (limit <= 0 || used < 0 || limit >= (std::int64_t{1} << 60)) return;
    const std::int64_t left = std::max<std::int64_t>(0, limit - used);
    if (best == 0 || left < best) best = std::max<std::int64_t>(left, 1);
  };
  for (std::string path = cgroup_path(""); !path.empty();) {
    const std::string dir = "/sys/fs/cgroup" + path;
    consider(read_bytes(dir + "/memory.max"), read_bytes(dir + "/memory.current"));
    if (path == "/") break;
    path = path.substr(0, std::max<std::size_t>(1, path.rfind('/')));
  }
  const std::string v1 = "/sys/fs/cgroup/memory" + cgroup_path("memory");
  consider(read_bytes(v1 + "/memory.limit_in_bytes"), read_bytes(v1 + "/memory.usage_in_bytes"));
  return best;
}

}  // namespace

MemoryAvailable available_memory() noexcept {
  MemoryAvailable out;
  const auto take = [&](std::int64_t bytes, const char* source) {
    if (bytes > 0 && (out.bytes == 0 || bytes < out.bytes)) out = {bytes, source};
  };
  try {
    take(meminfo_available(), "MemAvailable");
    take(cgroup_memory_left(), "cgroup memory limit");
  } catch (...) {
    // unreadable files: whatever was found stands
  }
  if (const int node = positive(std::getenv("SLURM_MEM_PER_NODE"))) {
    take(std::int64_t{node} << 20, "SLURM_MEM_PER_NODE");
  } else if (const int cpu = positive(std::getenv("SLURM_MEM_PER_CPU"))) {
    take((std::int64_t{cpu} << 20) * usable_cpu_count(), "SLURM_MEM_PER_CPU");
  }
  return out;
}

CpuBudget usable_cpus() noexcept {
  CpuBudget budget{affinity_cpus(), "affinity"};
  try {
    const int cgroup = cgroup_cpus();
    if (cgroup > 0 && cgroup < budget.cpus) budget = {cgroup, "cgroup CPU quota"};
  } catch (...) {
    // unreadable cgroup files: the affinity mask stands
  }
  const int slurm = positive(std::getenv("SLURM_CPUS_PER_TASK"));
  if (slurm > 0 && slurm < budget.cpus) budget = {slurm, "SLURM_CPUS_PER_TASK"};
  return budget;
}

int usable_cpu_count() noexcept { return usable_cpus().cpus; }

int numeric_library_threads() noexcept {
  for (const char* name : {"OMP_NUM_THREADS", "MKL_NUM_THREADS"}) {
    if (const int n = positive(std::getenv(name))) return n;
  }
  return 0;
}

}  // namespace mll
