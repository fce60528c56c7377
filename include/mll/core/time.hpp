// Wall-clock timestamps recorded in provenance (stores, graphs, model records).
#pragma once

#include <string>

namespace mll {

// The current UTC time as ISO 8601, "2026-11-29T14:13:02Z". Never throws.
std::string utc_now();

}  // namespace mll
