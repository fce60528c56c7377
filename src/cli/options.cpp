#include "options.hpp"

#include <algorithm>
#include <sstream>

#include "mll/core/cpus.hpp"
#include "mll/core/error.hpp"

namespace mll::cli {

void add_device_options(po::options_description& d) {
  d.add_options()("device", po::value<std::string>()->default_value("auto")->value_name("DEV"),
                  "auto (CUDA when available), cpu, cuda or cuda:N")(
      "threads", po::value<int>()->default_value(0)->value_name("N"),
      "CPU threads for the model (0: the CPUs this process may use; label shares them with "
      "decoding)")("half", po::bool_switch(), "run models in float16 (CUDA only)");
}

zoo::RunOptions run_options(const po::variables_map& vm) {
  const int threads = vm["threads"].as<int>();
  if (threads < 0) MLL_THROW(UsageError, "--threads must be >= 0");
  // 0: the CPUs this process may use (affinity, cgroup, Slurm), capped by OMP_NUM_THREADS.
  int chosen = threads > 0 ? threads : usable_cpu_count();
  if (threads == 0 && numeric_library_threads() > 0)
    chosen = std::min(chosen, numeric_library_threads());
  zoo::set_threads(chosen);
  zoo::RunOptions options;
  options.device = zoo::parse_device(vm["device"].as<std::string>());
  options.half = vm["half"].as<bool>();
  if (options.half && !options.device.is_cuda()) {
    MLL_THROW(UsageError, "--half needs a CUDA device (got ", options.device.str(), ")");
  }
  return options;
}

std::vector<std::string> split_ids(const std::string& list) {
  std::vector<std::string> ids;
  std::istringstream in(list);
  for (std::string id; std::getline(in, id, ',');) {
    if (!id.empty()) ids.push_back(id);
  }
  return ids;
}

}  // namespace mll::cli
