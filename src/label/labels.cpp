#include "mll/label/labels.hpp"

#include <algorithm>
#include <map>

#include "mll/core/error.hpp"
#include "mll/core/linalg.hpp"

namespace mll::label {

Matrix node_text_embeddings(const store::Store& store, const std::string& model_id) {
  const auto n = static_cast<std::int64_t>(store.graph().size());
  const Matrix text = store.read_text_embeddings(model_id);
  const std::int64_t dim = text.cols;
  // One row per node (captions may be shared by nodes; the node order is what predictions use).
  Matrix nodes;
  nodes.rows = n;
  nodes.cols = dim;
  nodes.values.resize(static_cast<std::size_t>(n * dim));
  for (std::int64_t v = 0; v < n; ++v) {
    const auto c = store.node_caption()[static_cast<std::size_t>(v)];
    std::copy_n(text.values.begin() + c * dim, dim, nodes.values.begin() + v * dim);
  }
  return nodes;
}

void predict_rows(const Matrix& rows, const Matrix& node_text, const std::string& model_id,
                  std::int32_t* out) {
  const std::int64_t n = node_text.rows, dim = node_text.cols;
  if (rows.rows == 0) return;
  if (rows.cols != dim) {
    MLL_THROW(DataError, "model '", model_id, "': image embeddings have width ", rows.cols,
              ", caption embeddings ", dim);
  }
  std::vector<float> scores(static_cast<std::size_t>(rows.rows * n));
  linalg::matmul_nt(rows.values.data(), rows.rows, node_text.values.data(), n, dim, scores.data());
  // First maximum wins, near-ties decided exactly: the same label whatever the block.
  linalg::first_argmax_nt(rows.values.data(), rows.rows, node_text.values.data(), n, dim,
                          scores.data(), out);
}

void predict_nodes(const store::Store& store, const std::string& model_id, const Matrix& node_text,
                   std::int64_t begin, std::int64_t end, std::int32_t* out, std::int64_t block) {
  if (block < 1) MLL_THROW(UsageError, "the summary-label block must be at least 1 image");
  for (std::int64_t first = begin; first < end; first += block) {
    const std::int64_t last = std::min(end, first + block);
    predict_rows(store.read_image_embeddings(model_id, first, last), node_text, model_id,
                 out + (first - begin));
  }
}

store::ModelLabels labels_from_predictions(const store::Store& store,
                                           const std::vector<std::int32_t>& predicted) {
  const auto& graph = store.graph();
  const auto& probe = store.probe();
  const auto n = static_cast<std::int64_t>(graph.size());
  MLL_CHECK(predicted.size() == probe.image_count(), "labels: ", predicted.size(),
            " predictions for ", probe.image_count(), " probe images");
  for (auto p : predicted)
    MLL_CHECK(p >= 0 && p < n, "labels: predicted node ", p, " out of range");

  // "p is v or below v" is "v is an ancestor-or-self of p"; sorted ancestor lists answer it
  // with a binary search (the graph is a DAG, so there is no interval numbering to use).
  std::vector<std::vector<std::int32_t>> ancestors(static_cast<std::size_t>(n));
  for (auto v : graph.topological_order()) {
    auto& list = ancestors[static_cast<std::size_t>(v)];
    list.push_back(v);
    for (auto p : graph.parents(static_cast<std::size_t>(v))) {
      const auto& up = ancestors[static_cast<std::size_t>(p)];
      list.insert(list.end(), up.begin(), up.end());
    }
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
  }

  store::ModelLabels labels;
  labels.node_top1.assign(static_cast<std::size_t>(n), 0.0f);
  labels.node_confusion.assign(static_cast<std::size_t>(n * 3), -1);
  labels.subtree_top1.assign(static_cast<std::size_t>(n), 0.0f);
  std::vector<char> has_images(static_cast<std::size_t>(n), 0);
  for (std::int64_t v = 0; v < n; ++v) {
    const auto members = probe.images_of(static_cast<std::size_t>(v));
    if (members.empty()) continue;
    has_images[static_cast<std::size_t>(v)] = 1;
    std::int64_t hits = 0;
    std::map<std::int32_t, std::int64_t> wrong;
    for (auto image : members) {
      const auto p = predicted[static_cast<std::size_t>(image)];
      const auto& up = ancestors[static_cast<std::size_t>(p)];
      if (std::binary_search(up.begin(), up.end(), static_cast<std::int32_t>(v))) {
        ++hits;
      } else {
        ++wrong[p];
      }
    }
    labels.node_top1[static_cast<std::size_t>(v)] =
        static_cast<float>(hits) / static_cast<float>(members.size());
    std::vector<std::pair<std::int64_t, std::int32_t>> ranked;
    for (const auto& [node, count] : wrong) ranked.emplace_back(-count, node);
    std::sort(ranked.begin(), ranked.end());
    for (std::size_t k = 0; k < std::min<std::size_t>(3, ranked.size()); ++k) {
      labels.node_confusion[static_cast<std::size_t>(v * 3) + k] = ranked[k].second;
    }
  }
  for (std::int64_t v = 0; v < n; ++v) {
    double sum = has_images[static_cast<std::size_t>(v)]
                     ? labels.node_top1[static_cast<std::size_t>(v)]
                     : 0.0;
    int count = has_images[static_cast<std::size_t>(v)] ? 1 : 0;
    for (auto d : graph.descendants(static_cast<std::int32_t>(v))) {
      if (has_images[static_cast<std::size_t>(d)]) {
        sum += labels.node_top1[static_cast<std::size_t>(d)];
        ++count;
      }
    }
    labels.subtree_top1[static_cast<std::size_t>(v)] =
        count ? static_cast<float>(sum / count) : 0.0f;
  }
  return labels;
}

store::ModelLabels compute_labels(const store::Store& store, const std::string& model_id,
                                  std::int64_t block) {
  const Matrix node_text = node_text_embeddings(store, model_id);
  std::vector<std::int32_t> predicted(store.probe().image_count());
  predict_nodes(store, model_id, node_text, 0, static_cast<std::int64_t>(predicted.size()),
                predicted.data(), block);
  return labels_from_predictions(store, predicted);
}

}  // namespace mll::label
