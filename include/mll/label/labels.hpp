// Summary labels of one model (method.md section 2), for people, not for selection: per node
// how often the model recognises the node's probe images among all graph nodes, its top
// confusions, and per subtree aggregates. Computed from the stored (float16) embeddings, so
// they are what any later reader of the store would compute. Not collective.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mll/store/store.hpp"

namespace mll::label {

// Predictions are argmax over all N node captions of E[x] . T[caption(v)]. A probe image of node
// v counts as recognised when the prediction is v or one of v's descendants (for a leaf: exact
// top-1; for "dog": any dog). Confusions are the three most frequent other predictions.
// Streams the probe images in blocks of `block` rows. Throws what the store's readers throw.
store::ModelLabels compute_labels(const store::Store& store, const std::string& model_id,
                                  std::int64_t block = 4096);

}  // namespace mll::label
