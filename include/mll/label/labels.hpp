// Summary labels of one model (method.md section 2), for people, not for selection: per node
// how often the model recognises the node's probe images among all graph nodes, its top
// confusions, and per subtree aggregates. Computed from the stored (float16) embeddings, so
// they are what any later reader of the store would compute. Not collective.
//
// Two steps, so that ranks can share the expensive one: predicting the node of every probe image
// (a P x N x d product, streamed in blocks of a fixed grid, so every row's prediction is the same
// whichever process computes its block) and counting them (cheap, on one process).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mll/store/store.hpp"

namespace mll::label {

// Probe images per prediction block by default: the grid that ranks share out (the score matrix
// of one block is block x N floats, 37 MB for 1,024 images and 9,055 nodes).
inline constexpr std::int64_t kPredictBlock = 1024;

// The caption embedding of every graph node (N x d, node order). Throws what the store throws.
Matrix node_text_embeddings(const store::Store& store, const std::string& model_id);

// The predicted node of each row of `rows` (image embeddings in memory): argmax over all N nodes
// of row . T[v], the first maximum winning ties. Writes rows.rows values to `out`. Throws
// DataError when image and text widths differ.
void predict_rows(const Matrix& rows, const Matrix& node_text, const std::string& model_id,
                  std::int32_t* out);

// The predicted node of probe images [begin, end): argmax over all N nodes of E[x] . T[v], the
// first maximum winning ties. Writes end - begin values to `out`. Rows are scored `block` at a
// time from `begin`: callers that split the images start every piece on that grid, so each row
// is scored in the same block however the work was split. Throws what the store throws,
// DataError when image and text widths differ, UsageError for a block < 1.
void predict_nodes(const store::Store& store, const std::string& model_id, const Matrix& node_text,
                   std::int64_t begin, std::int64_t end, std::int32_t* out,
                   std::int64_t block = kPredictBlock);

// The summary labels from the predicted node of every probe image (P values, all >= 0).
// A probe image of node v counts as recognised when the prediction is v or one of v's
// descendants (for a leaf: exact top-1; for "dog": any dog). Confusions are the three most
// frequent other predictions. Throws InternalError on a wrong-sized or negative prediction.
store::ModelLabels labels_from_predictions(const store::Store& store,
                                           const std::vector<std::int32_t>& predicted);

// Both steps in this process, block by block (memory independent of P).
store::ModelLabels compute_labels(const store::Store& store, const std::string& model_id,
                                  std::int64_t block = kPredictBlock);

}  // namespace mll::label
