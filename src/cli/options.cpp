#include "options.hpp"

#include <algorithm>
#include <charconv>
#include <sstream>

#include "mll/core/cpus.hpp"
#include "mll/core/error.hpp"
#include "mll/feed/parity.hpp"

namespace mll::cli {

void add_device_options(po::options_description& d) {
  d.add_options()("device", po::value<std::string>()->default_value("auto")->value_name("DEV"),
                  "auto (CUDA when available), cpu, cuda or cuda:N")(
      "threads", po::value<int>()->default_value(0)->value_name("N"),
      "CPU threads for the model (0: the CPUs this process may use; label shares them with "
      "decoding)")("precision", po::value<std::string>()->default_value("auto")->value_name("P"),
                   "number format of the towers: auto (fp16 on CUDA, fp32 on the CPU), fp32, "
                   "fp16 (CUDA only) or bf16; keep it the same across reruns of one store")(
      "half", po::bool_switch(), "the same as --precision fp16");
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
  std::string precision = vm["precision"].as<std::string>();
  if (vm["half"].as<bool>()) {
    if (!vm["precision"].defaulted() && precision != "fp16") {
      MLL_THROW(UsageError, "--half contradicts --precision ", precision);
    }
    precision = "fp16";
  }
  options.precision = zoo::parse_precision(precision, options.device);
  return options;
}

void add_parity_option(po::options_description& d) {
  d.add_options()("parity-min-cosine", po::value<double>()->value_name("C"),
                  "refuse a model whose embeddings of the parity set differ from its sidecar's "
                  "reference below this cosine (default: 0.99999 in fp32, 0.9999 in fp16, "
                  "0.999 in bf16; 0 turns the guard off)");
}

double parity_min_cosine(const po::variables_map& vm, zoo::Precision precision) {
  if (!vm.count("parity-min-cosine")) return feed::default_min_cosine(precision);
  const double value = vm["parity-min-cosine"].as<double>();
  if (!(value >= 0.0 && value <= 1.0)) {
    MLL_THROW(UsageError, "--parity-min-cosine ", value, ": must be in [0, 1]");
  }
  return value;
}

po::typed_value<double>* real_value(double default_value) {
  char text[64];
  const auto end = std::to_chars(text, text + sizeof text, default_value).ptr;
  return po::value<double>()->default_value(default_value, std::string(text, end));
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
