// The version of mll, recorded in every store's provenance.
#pragma once

#include <string>

namespace mll {

// "0.1.0" and, when built from a git checkout, the commit ("0.1.0+g1a2b3c4").
std::string version();

}  // namespace mll
