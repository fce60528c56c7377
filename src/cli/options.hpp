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

// --parity-min-cosine (the parity guard's threshold, docs/models.md "The parity guard").
void add_parity_option(po::options_description& d);
// The threshold asked for, else feed::default_min_cosine(precision). Throws UsageError for a
// value outside [0, 1].
double parity_min_cosine(const po::variables_map& vm, zoo::Precision precision);

// A double option whose default --help prints as typed ("0.7", not Boost's
// "0.69999999999999996"): the shortest text that reads back as the same double.
po::typed_value<double>* real_value(double default_value);

// "a,b,,c" -> {"a","b","c"}.
std::vector<std::string> split_ids(const std::string& list);

}  // namespace mll::cli
