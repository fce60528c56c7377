#include "mll/select/selection.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "mll/core/error.hpp"
#include "mll/core/linalg.hpp"

namespace mll::select {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

Metric parse_metric(const std::string& text) {
  if (text == "precision") return Metric::kPrecision;
  if (text == "recall") return Metric::kRecall;
  if (text == "f1") return Metric::kF1;
  MLL_THROW(UsageError, "unknown metric '", text, "' (precision, recall or f1)");
}

Mix parse_mix(const std::string& text) {
  if (text == "all") return Mix::kAll;
  if (text == "others") return Mix::kOthers;
  MLL_THROW(UsageError, "unknown mix '", text, "' (all or others)");
}

std::string to_string(Metric metric) {
  switch (metric) {
    case Metric::kPrecision:
      return "precision";
    case Metric::kRecall:
      return "recall";
    case Metric::kF1:
      return "f1";
  }
  return "?";
}

std::string to_string(Mix mix) { return mix == Mix::kAll ? "all" : "others"; }

std::vector<std::int32_t> restricted_predictions(const float* logits, std::int64_t rows,
                                                 std::int64_t k) {
  std::vector<std::int32_t> pred(static_cast<std::size_t>(rows), -1);
  for (std::int64_t i = 0; i < rows; ++i) {
    const float* row = logits + i * k;
    pred[static_cast<std::size_t>(i)] =
        static_cast<std::int32_t>(std::max_element(row, row + k) - row);
  }
  return pred;
}

std::vector<NodeCounts> node_counts(const std::vector<std::vector<std::int64_t>>& members,
                                    const std::vector<std::int32_t>& pred) {
  const auto k = static_cast<std::int32_t>(members.size());
  std::vector<NodeCounts> counts(members.size());
  for (std::int32_t v = 0; v < k; ++v) {
    for (const auto row : members[static_cast<std::size_t>(v)]) {
      MLL_CHECK(row >= 0 && row < static_cast<std::int64_t>(pred.size()), "row ", row);
      const auto p = pred[static_cast<std::size_t>(row)];
      MLL_CHECK(p >= 0 && p < k, "prediction ", p, " out of range");
      if (p == v) {
        ++counts[static_cast<std::size_t>(v)].tp;
      } else {
        ++counts[static_cast<std::size_t>(p)].fp;
        ++counts[static_cast<std::size_t>(v)].fn;
      }
    }
  }
  return counts;
}

double node_score(const NodeCounts& c, Metric metric) {
  const auto ratio = [](std::int64_t num, std::int64_t den) {
    return den == 0 ? 0.0 : static_cast<double>(num) / static_cast<double>(den);
  };
  switch (metric) {
    case Metric::kPrecision:
      return ratio(c.tp, c.tp + c.fp);
    case Metric::kRecall:
      return ratio(c.tp, c.tp + c.fn);
    case Metric::kF1:
      return ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn);
  }
  return 0.0;
}

std::vector<double> class_scores(const std::vector<double>& node_scores,
                                 const std::vector<ClassNodes>& classes) {
  std::vector<double> out(classes.size(), 0.0);
  for (std::size_t y = 0; y < classes.size(); ++y) {
    const auto& c = classes[y];
    MLL_CHECK(c.nodes.size() == c.weights.size());
    double sum = 0.0;
    for (std::size_t j = 0; j < c.nodes.size(); ++j) {
      sum += c.weights[j] * node_scores.at(static_cast<std::size_t>(c.nodes[j]));
    }
    out[y] = sum;
  }
  return out;
}

std::vector<double> mixed_scores(const std::vector<double>& p, double alpha, Mix mix) {
  const double n = static_cast<double>(p.size());
  const double total = std::accumulate(p.begin(), p.end(), 0.0);
  std::vector<double> r(p.size());
  for (std::size_t y = 0; y < p.size(); ++y) {
    double mean = total / n;
    if (mix == Mix::kOthers) mean = p.size() > 1 ? (total - p[y]) / (n - 1.0) : p[y];
    r[y] = alpha * p[y] + (1.0 - alpha) * mean;
  }
  return r;
}

std::vector<std::size_t> top_k(const std::vector<double>& scores, std::size_t k) {
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  order.resize(std::min(k, order.size()));
  return order;
}

TaskNodes task_nodes(const store::Store& store,
                     const std::vector<std::vector<std::int32_t>>& class_nodes,
                     const std::vector<std::vector<double>>& weights) {
  MLL_CHECK(class_nodes.size() == weights.size());
  const auto n = static_cast<std::int32_t>(store.graph().size());
  TaskNodes out;
  for (std::size_t y = 0; y < class_nodes.size(); ++y) {
    if (class_nodes[y].size() != weights[y].size()) {
      MLL_THROW(UsageError, "class ", y, ": ", class_nodes[y].size(), " nodes but ",
                weights[y].size(), " weights");
    }
    double sum = 0.0;
    for (std::size_t j = 0; j < class_nodes[y].size(); ++j) {
      const auto v = class_nodes[y][j];
      if (v < 0 || v >= n) MLL_THROW(UsageError, "class ", y, ": node index ", v, " out of range");
      if (!(weights[y][j] >= 0.0)) MLL_THROW(UsageError, "class ", y, ": negative node weight");
      sum += weights[y][j];
      out.nodes.push_back(v);
    }
    if (!class_nodes[y].empty() && std::abs(sum - 1.0) > 1e-6) {
      MLL_THROW(UsageError, "class ", y, ": node weights sum to ", sum, ", not 1");
    }
  }
  std::sort(out.nodes.begin(), out.nodes.end());
  out.nodes.erase(std::unique(out.nodes.begin(), out.nodes.end()), out.nodes.end());
  for (std::size_t y = 0; y < class_nodes.size(); ++y) {
    ClassNodes c;
    for (std::size_t j = 0; j < class_nodes[y].size(); ++j) {
      const auto it = std::lower_bound(out.nodes.begin(), out.nodes.end(), class_nodes[y][j]);
      c.nodes.push_back(static_cast<std::int32_t>(it - out.nodes.begin()));
      c.weights.push_back(weights[y][j]);
    }
    out.classes.push_back(std::move(c));
  }
  const auto& probe = store.probe();
  std::vector<std::vector<std::int32_t>> node_images;
  for (const auto v : out.nodes) {
    node_images.push_back(probe.images_of(static_cast<std::size_t>(v)));
    out.images.insert(out.images.end(), node_images.back().begin(), node_images.back().end());
  }
  std::sort(out.images.begin(), out.images.end());
  out.images.erase(std::unique(out.images.begin(), out.images.end()), out.images.end());
  for (const auto& list : node_images) {
    std::vector<std::int64_t> rows;
    rows.reserve(list.size());
    for (const auto image : list) {
      rows.push_back(std::lower_bound(out.images.begin(), out.images.end(), image) -
                     out.images.begin());
    }
    out.members.push_back(std::move(rows));
  }
  return out;
}

ModelScores score_model(const store::Store& store, const std::string& id, const TaskNodes& nodes,
                        const SelectOptions& options, double* io_seconds, double* compute_seconds) {
  auto t0 = Clock::now();
  const auto info = store.model_info(id);
  const Matrix text = store.read_text_embeddings(id);
  double io = seconds_since(t0), compute = 0.0;
  const std::int64_t d = text.cols;
  const auto k = static_cast<std::int64_t>(nodes.nodes.size());
  const auto scale = static_cast<float>(info.logit_scale);
  // T restricted to V_T, pre-multiplied by the logit scale: L = s E T^T (s > 0 keeps the argmax).
  std::vector<float> node_text(static_cast<std::size_t>(k * d));
  for (std::int64_t j = 0; j < k; ++j) {
    const auto c =
        store.node_caption()[static_cast<std::size_t>(nodes.nodes[static_cast<std::size_t>(j)])];
    for (std::int64_t t = 0; t < d; ++t) {
      node_text[static_cast<std::size_t>(j * d + t)] =
          scale * text.values[static_cast<std::size_t>(c * d + t)];
    }
  }
  // Predictions of the task images, read as runs of consecutive image ids (small gaps are read
  // through: one larger read is cheaper than many small ones).
  const auto count = static_cast<std::int64_t>(nodes.images.size());
  std::vector<std::int32_t> pred(static_cast<std::size_t>(count), 0);
  std::vector<float> gathered, logits;
  constexpr std::int64_t kGap = 64;
  std::int64_t i = 0;
  while (i < count) {
    // Rows i..j-1 (of `images`) come from image ids [first, last).
    const std::int64_t first = nodes.images[static_cast<std::size_t>(i)];
    std::int64_t j = i + 1;
    while (j < count &&
           nodes.images[static_cast<std::size_t>(j)] -
                   nodes.images[static_cast<std::size_t>(j - 1)] <=
               kGap &&
           nodes.images[static_cast<std::size_t>(j)] - first < options.block_rows) {
      ++j;
    }
    const std::int64_t last = nodes.images[static_cast<std::size_t>(j - 1)] + 1;
    t0 = Clock::now();
    const Matrix rows = store.read_image_embeddings(id, first, last);
    io += seconds_since(t0);
    t0 = Clock::now();
    MLL_CHECK(rows.cols == d, "image and text dims differ for ", id);
    gathered.resize(static_cast<std::size_t>((j - i) * d));
    for (std::int64_t r = i; r < j; ++r) {
      const auto src = (nodes.images[static_cast<std::size_t>(r)] - first) * d;
      std::copy_n(rows.values.begin() + src, d, gathered.begin() + (r - i) * d);
    }
    logits.resize(static_cast<std::size_t>((j - i) * k));
    linalg::matmul_nt(gathered.data(), j - i, node_text.data(), k, d, logits.data());
    const auto p = restricted_predictions(logits.data(), j - i, k);
    std::copy(p.begin(), p.end(), pred.begin() + i);
    compute += seconds_since(t0);
    i = j;
  }
  t0 = Clock::now();
  ModelScores out;
  out.model = id;
  out.logit_scale = info.logit_scale;
  out.counts = node_counts(nodes.members, pred);
  for (const auto& c : out.counts) out.node_scores.push_back(node_score(c, options.metric));
  out.class_scores = class_scores(out.node_scores, nodes.classes);
  out.mixed = mixed_scores(out.class_scores, options.alpha, options.mix);
  compute += seconds_since(t0);
  if (io_seconds) *io_seconds += io;
  if (compute_seconds) *compute_seconds += compute;
  return out;
}

SelectionResult select_models(const store::Store& store, const std::vector<std::string>& models,
                              const TaskNodes& nodes, const SelectOptions& options) {
  if (models.empty())
    MLL_THROW(UsageError, store.path(), ": no labeled (done) models to select from");
  if (options.k < 1) MLL_THROW(UsageError, "k must be at least 1");
  if (!(options.alpha >= 0.0 && options.alpha <= 1.0)) {
    MLL_THROW(UsageError, "alpha must lie in [0, 1] (got ", options.alpha, ")");
  }
  SelectionResult out;
  out.models = models;
  for (const auto& id : models) {
    const auto record = store.find_model(id);
    if (!record || record->status != store::ModelStatus::kDone) {
      MLL_THROW(UsageError, store.path(), ": model '", id, "' is not a done model of the store");
    }
    out.scores.push_back(
        score_model(store, id, nodes, options, &out.io_seconds, &out.compute_seconds));
  }
  out.chosen.resize(nodes.classes.size());
  std::vector<double> column(models.size());
  for (std::size_t y = 0; y < nodes.classes.size(); ++y) {
    for (std::size_t m = 0; m < models.size(); ++m) column[m] = out.scores[m].mixed[y];
    for (const auto m : top_k(column, options.k)) {
      out.chosen[y].push_back({models[m], out.scores[m].mixed[y], out.scores[m].class_scores[y]});
    }
  }
  return out;
}

std::vector<std::string> candidate_models(const store::Store& store,
                                          const std::vector<std::string>& order,
                                          const std::vector<std::string>& only) {
  std::vector<std::string> done;
  for (const auto& r : store.models()) {
    if (r.status == store::ModelStatus::kDone) done.push_back(r.id);
  }
  for (const auto& id : only) {
    if (std::find(done.begin(), done.end(), id) == done.end()) {
      MLL_THROW(UsageError, store.path(), ": model '", id, "' is not a done model of the store");
    }
  }
  std::vector<std::string> out;
  const auto wanted = [&](const std::string& id) {
    return (only.empty() || std::find(only.begin(), only.end(), id) != only.end()) &&
           std::find(out.begin(), out.end(), id) == out.end();
  };
  for (const auto& id : order) {
    if (std::find(done.begin(), done.end(), id) != done.end() && wanted(id)) out.push_back(id);
  }
  for (const auto& id : done) {
    if (wanted(id)) out.push_back(id);
  }
  return out;
}

}  // namespace mll::select
