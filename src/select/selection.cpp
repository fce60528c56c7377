#include "mll/select/selection.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <future>
#include <mutex>
#include <numeric>
#include <thread>

#include "mll/core/cpus.hpp"
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

void restricted_predictions(const float* logits, std::int64_t rows, std::int64_t k,
                            std::int32_t* pred) {
  for (std::int64_t i = 0; i < rows; ++i) {
    pred[i] = static_cast<std::int32_t>(linalg::first_max(logits + i * k, k));
  }
}

std::vector<std::int32_t> restricted_predictions(const float* logits, std::int64_t rows,
                                                 std::int64_t k) {
  std::vector<std::int32_t> pred(static_cast<std::size_t>(rows), -1);
  if (k > 0) restricted_predictions(logits, rows, k, pred.data());
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

namespace {

// One model's rows of a task, read from the store: what scoring it needs and nothing more.
struct TaskRows {
  std::string id;
  double logit_scale = 0.0;
  std::vector<float> node_text;  // K x d: T of the task nodes' captions, times the logit scale
  Matrix images;                 // the task's images x d, in TaskNodes::images order
  double io_seconds = 0.0;
};

TaskRows read_task_rows(const store::Store& store, const std::string& id, const TaskNodes& nodes) {
  const auto t0 = Clock::now();
  TaskRows out;
  out.id = id;
  out.logit_scale = store.model_info(id).logit_scale;
  // The captions of V_T (nodes may share one), read once each.
  std::vector<std::int64_t> captions;
  for (const auto v : nodes.nodes)
    captions.push_back(store.node_caption()[static_cast<std::size_t>(v)]);
  std::vector<std::int64_t> unique = captions;
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  const Matrix text = store.read_text_rows(id, unique);
  const std::int64_t d = text.cols;
  // L = s E T^T with s folded into T (s > 0 keeps the argmax), as s * T[c] in float.
  const auto scale = static_cast<float>(out.logit_scale);
  out.node_text.resize(captions.size() * static_cast<std::size_t>(d));
  for (std::size_t j = 0; j < captions.size(); ++j) {
    const auto row = std::lower_bound(unique.begin(), unique.end(), captions[j]) - unique.begin();
    const float* src = text.row(row);
    float* dst = out.node_text.data() + j * static_cast<std::size_t>(d);
    for (std::int64_t t = 0; t < d; ++t) dst[t] = scale * src[t];
  }
  const std::vector<std::int64_t> images(nodes.images.begin(), nodes.images.end());
  out.images = store.read_image_rows(id, images);
  if (!images.empty() && !captions.empty() && out.images.cols != d) {
    MLL_THROW(DataError, store.path(), ": model ", id, ": image rows of width ", out.images.cols,
              " but caption rows of width ", d);
  }
  out.io_seconds = seconds_since(t0);
  return out;
}

int worker_threads(const SelectOptions& options) {
  if (options.threads > 0) return options.threads;
  const int library = numeric_library_threads();
  return library > 0 ? std::min(library, usable_cpu_count()) : usable_cpu_count();
}

// pred(x) for every task image: one pass over the images in blocks of at most `block_rows` rows,
// spread over `threads` threads, each multiplying its block on one BLAS thread and taking the
// argmax while the block's logits are in cache. Near-ties are decided exactly
// (linalg::first_argmax_nt), so neither the block size nor the thread count changes a prediction.
std::vector<std::int32_t> predict(const TaskRows& rows, std::int64_t k, std::int64_t block_rows,
                                  int threads) {
  const std::int64_t count = rows.images.rows, d = rows.images.cols;
  std::vector<std::int32_t> pred(static_cast<std::size_t>(count), 0);
  if (count == 0 || k == 0) return pred;
  const std::int64_t size = std::max<std::int64_t>(1, block_rows);
  const std::int64_t blocks = (count + size - 1) / size;
  std::atomic<std::int64_t> next{0};
  std::mutex failure_mutex;
  std::exception_ptr failure;
  const auto work = [&] {
    try {
      std::vector<float> logits(static_cast<std::size_t>(std::min(size, count) * k));
      for (std::int64_t b = next++; b < blocks; b = next++) {
        const std::int64_t first = b * size, n = std::min(size, count - first);
        linalg::matmul_nt(rows.images.row(first), n, rows.node_text.data(), k, d, logits.data());
        linalg::first_argmax_nt(rows.images.row(first), n, rows.node_text.data(), k, d,
                                logits.data(), pred.data() + first);
      }
    } catch (...) {
      const std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  };
  const auto helpers = static_cast<std::size_t>(std::clamp<std::int64_t>(threads, 1, blocks) - 1);
  std::vector<std::thread> pool;
  pool.reserve(helpers);
  for (std::size_t t = 0; t < helpers; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
  return pred;
}

ModelScores score_rows(const TaskRows& rows, const TaskNodes& nodes, const SelectOptions& options,
                       double* compute_seconds) {
  const auto t0 = Clock::now();
  ModelScores out;
  out.model = rows.id;
  out.logit_scale = rows.logit_scale;
  const auto pred = predict(rows, static_cast<std::int64_t>(nodes.nodes.size()), options.block_rows,
                            worker_threads(options));
  out.counts = node_counts(nodes.members, pred);
  for (const auto& c : out.counts) out.node_scores.push_back(node_score(c, options.metric));
  out.class_scores = class_scores(out.node_scores, nodes.classes);
  out.mixed = mixed_scores(out.class_scores, options.alpha, options.mix);
  if (compute_seconds) *compute_seconds += seconds_since(t0);
  return out;
}

}  // namespace

ModelScores score_model(const store::Store& store, const std::string& id, const TaskNodes& nodes,
                        const SelectOptions& options, double* io_seconds, double* compute_seconds) {
  const TaskRows rows = read_task_rows(store, id, nodes);
  if (io_seconds) *io_seconds += rows.io_seconds;
  return score_rows(rows, nodes, options, compute_seconds);
}

SelectionResult select_models(const store::Store& store, const std::vector<std::string>& models,
                              const TaskNodes& nodes, const SelectOptions& options) {
  if (models.empty())
    MLL_THROW(UsageError, store.path(), ": no labeled (done) models to select from");
  if (options.k < 1) MLL_THROW(UsageError, "k must be at least 1");
  if (!(options.alpha >= 0.0 && options.alpha <= 1.0)) {
    MLL_THROW(UsageError, "alpha must lie in [0, 1] (got ", options.alpha, ")");
  }
  for (const auto& id : models) {
    const auto record = store.find_model(id);
    if (!record || record->status != store::ModelStatus::kDone) {
      MLL_THROW(UsageError, store.path(), ": model '", id, "' is not a done model of the store");
    }
  }
  // The products run on selection's own threads, one BLAS thread each: BLAS's pool would spin
  // between the many small products and compete with the reading thread.
  const linalg::ScopedThreads one_blas_thread(1);
  SelectionResult out;
  out.models = models;
  // Every file's seal first, on every CPU; then one thread reads only rows.
  const auto t0 = Clock::now();
  store.check_files(models);
  out.io_seconds += seconds_since(t0);
  // Model i + 1 is read (seal check, float16 rows) on a second thread while model i is scored.
  // Only that thread touches the store until the loop ends: a Store serves one thread at a time.
  const auto read = [&](std::size_t m) { return read_task_rows(store, models[m], nodes); };
  std::future<TaskRows> next = std::async(std::launch::async, read, 0);
  for (std::size_t m = 0; m < models.size(); ++m) {
    TaskRows rows = next.get();
    if (m + 1 < models.size()) next = std::async(std::launch::async, read, m + 1);
    out.io_seconds += rows.io_seconds;
    out.scores.push_back(score_rows(rows, nodes, options, &out.compute_seconds));
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
