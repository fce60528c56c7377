// Private to the cli module: options shared by several commands.
#pragma once

#include <string>
#include <vector>

#include "command.hpp"
#include "mll/zoo/runner.hpp"

namespace mll::cli {

// --device and --threads.
void add_device_options(po::options_description& d);
// Applies --threads (libtorch's intra-op threads) and returns the run options for --device.
// Throws UsageError for a bad device or thread count.
zoo::RunOptions run_options(const po::variables_map& vm);

// "a,b,,c" -> {"a","b","c"}.
std::vector<std::string> split_ids(const std::string& list);

}  // namespace mll::cli
