#include "options.hpp"

#include <sstream>
#include <thread>

#include "mll/core/error.hpp"

namespace mll::cli {

void add_device_options(po::options_description& d) {
  d.add_options()("device", po::value<std::string>()->default_value("auto")->value_name("DEV"),
                  "auto (CUDA when available), cpu, cuda or cuda:N")(
      "threads", po::value<int>()->default_value(0)->value_name("N"),
      "CPU threads for the model (0: all cores)")("half", po::bool_switch(),
                                                  "run models in float16 (CUDA only)");
}

zoo::RunOptions run_options(const po::variables_map& vm) {
  const int threads = vm["threads"].as<int>();
  if (threads < 0) MLL_THROW(UsageError, "--threads must be >= 0");
  zoo::set_threads(
      threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
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
