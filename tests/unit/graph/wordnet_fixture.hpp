// Loads Debian's WordNet once per test binary (it takes ~0.5 s).
#pragma once

#include <filesystem>

#include "mll/graph/wordnet.hpp"

namespace mll::test {

inline const graph::WordNet& wordnet() {
  static const graph::WordNet wn = graph::WordNet::load(graph::WordNet::default_dir());
  return wn;
}

}  // namespace mll::test
