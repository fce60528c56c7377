#include "mll/reuse/reuse.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/core/linalg.hpp"
#include "mll/core/log.hpp"
#include "mll/feed/inputs.hpp"
#include "mll/feed/prefetch.hpp"
#include "mll/select/match.hpp"
#include "mll/zoo/digests.hpp"

namespace mll::reuse {
namespace {

namespace stdfs = std::filesystem;

zoo::ModelSpec spec_from_store(const store::Store& store, const zoo::ZooManifest& zoo,
                               const std::string& id) {
  const auto record = store.find_model(id);
  if (!record) MLL_THROW(DataError, "model '", id, "' is not in the store ", store.path());
  if (!zoo.contains(id)) {
    MLL_THROW(UsageError, "model '", id, "' is not in the zoo manifest ", zoo.path(),
              " (needed for its model file)");
  }
  for (const auto& entry : zoo.entries()) {
    if (entry.id != id) continue;
    const std::string base = stdfs::path(zoo.sidecar_path(entry)).parent_path().string();
    return zoo::parse_sidecar(record->sidecar_json, store.path() + ": sidecar of " + id, base);
  }
  MLL_THROW(InternalError, "unreachable");
}

void set_metrics(MethodResult& method, const Metrics& m) {
  method.evaluated = true;
  method.metrics = m;
  method.top1_mean = m.top1;
  method.top5_mean = m.top5;
  method.recall_mean = m.mean_class_recall;
}

}  // namespace

std::vector<std::string> read_templates(const std::string& path) {
  if (!stdfs::is_regular_file(path)) MLL_THROW(DataError, path, ": template file does not exist");
  std::ifstream in(path);
  std::vector<std::string> out;
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos || line[0] == '#') continue;
    // CLIP_benchmark's zeroshot_classification_templates.txt writes the class as {c}.
    for (auto at = line.find("{c}"); at != std::string::npos; at = line.find("{c}", at)) {
      line.replace(at, 3, "{class}");
    }
    if (line.find("{class}") == std::string::npos) {
      MLL_THROW(DataError, path, ":", number, ": template '", line, "' has no {class}");
    }
    out.push_back(line);
  }
  if (out.empty()) MLL_THROW(DataError, path, ": no templates");
  return out;
}

std::vector<float> class_prompt_embeddings(const zoo::Model& model, const zoo::ModelSpec& spec,
                                           const std::vector<std::string>& classes,
                                           const std::vector<std::string>& templates,
                                           std::int64_t* dim) {
  const auto tokenizer = feed::make_tokenizer(spec);
  std::vector<float> out;
  std::int64_t d = 0;
  for (std::size_t y = 0; y < classes.size(); ++y) {
    std::vector<std::string> texts;
    for (const auto& t : templates) texts.push_back(select::fill_template(t, classes[y], ""));
    const auto ids = tokenizer->encode_batch(texts);
    const auto e =
        model.encode_text(ids.data(), static_cast<int>(texts.size()), tokenizer->context_length());
    d = e.cols;
    if (out.empty())
      out.assign(static_cast<std::size_t>(classes.size()) * static_cast<std::size_t>(d), 0.0f);
    std::vector<double> mean(static_cast<std::size_t>(d), 0.0);
    for (std::int64_t r = 0; r < e.rows; ++r) {
      for (std::int64_t t = 0; t < d; ++t) mean[static_cast<std::size_t>(t)] += e.row(r)[t];
    }
    double norm = 0.0;
    for (const auto v : mean) norm += v * v;
    norm = std::sqrt(norm);
    for (std::int64_t t = 0; t < d; ++t) {
      out[y * static_cast<std::size_t>(d) + static_cast<std::size_t>(t)] =
          static_cast<float>(norm > 0 ? mean[static_cast<std::size_t>(t)] / norm : 0.0);
    }
  }
  if (dim) *dim = d;
  return out;
}

MatrixD predict_model(const zoo::ModelSpec& spec, const std::vector<std::string>& image_paths,
                      const std::vector<std::string>& classes, const ReuseOptions& options) {
  zoo::Model model(spec, options.run);
  std::int64_t d = 0;
  const auto prompts = class_prompt_embeddings(model, spec, classes, options.templates, &d);
  const auto c = static_cast<std::int64_t>(classes.size());
  const auto n = static_cast<std::int64_t>(image_paths.size());
  std::vector<float> cosines(static_cast<std::size_t>(n * c));
  const auto pre = feed::preprocess_spec(spec);
  feed::Prefetcher prefetcher(image_paths, pre, options.batch, options.decode_threads,
                              options.prefetch_batches);
  feed::Prefetcher::Batch batch;
  while (prefetcher.next(batch)) {
    // The model is the batch's only reader: it may take the buffer as its input.
    const auto e =
        model.encode_images_consuming(batch.pixels(), batch.count, pre.height, pre.width);
    if (e.cols != d) {
      MLL_THROW(DataError, "model '", spec.id, "': image width ", e.cols, " != text width ", d);
    }
    linalg::matmul_nt(e.values.data(), e.rows, prompts.data(), c, d,
                      cosines.data() + batch.first * c);
  }
  return probabilities_from_cosines(cosines, n, c, spec.logit_scale);
}

std::string general_accuracy(const store::Store& store, const std::vector<std::string>& models,
                             std::map<std::string, double>* out) {
  std::map<std::string, double> imagenet;
  for (const auto& id : models) {
    const auto record = store.find_model(id);
    if (!record) continue;
    try {
      const auto spec = zoo::parse_sidecar(record->sidecar_json, id, "");
      if (spec.imagenet_top1) imagenet[id] = *spec.imagenet_top1;
    } catch (const Error&) {
      // A sidecar that does not parse simply has no figure.
    }
  }
  if (!models.empty() && imagenet.size() == models.size()) {
    *out = imagenet;
    return "imagenet_top1";
  }
  const auto& probe = store.probe();
  for (const auto& id : models) {
    const auto labels = store.read_labels(id);
    double sum = 0.0;
    std::int64_t count = 0;
    for (std::size_t v = 0; v < labels.node_top1.size() && v + 1 < probe.node_offsets.size(); ++v) {
      if (probe.node_offsets[v + 1] == probe.node_offsets[v]) continue;
      sum += labels.node_top1[v];
      ++count;
    }
    (*out)[id] = count > 0 ? sum / static_cast<double>(count) : 0.0;
  }
  return "mean node_top1";
}

void combine(ReuseReport& report, const std::map<std::string, MatrixD>& predictions,
             const ReuseOptions& options) {
  const auto& sel = report.selection;
  const auto classes = static_cast<std::int64_t>(report.classes.size());
  const auto images = static_cast<std::int64_t>(report.images.size());
  report.methods.clear();

  // Runs one method given per-class model lists.
  const auto run = [&](const std::vector<std::vector<std::string>>& lists) {
    std::vector<std::string> ids;
    for (const auto& l : lists) {
      for (const auto& id : l) {
        if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
      }
    }
    std::vector<const MatrixD*> models;
    for (const auto& id : ids) {
      const auto it = predictions.find(id);
      MLL_CHECK(it != predictions.end(), "no predictions of ", id);
      models.push_back(&it->second);
    }
    std::vector<std::vector<std::size_t>> chosen;
    for (const auto& l : lists) {
      std::vector<std::size_t> idx;
      for (const auto& id : l) {
        idx.push_back(
            static_cast<std::size_t>(std::find(ids.begin(), ids.end(), id) - ids.begin()));
      }
      chosen.push_back(idx);
    }
    return ensemble_scores(models, chosen, options.eps);
  };
  const auto finish = [&](MethodResult& method, const std::vector<double>& scores) {
    if (report.labeled) {
      set_metrics(method, evaluate(scores, images, classes, report.labels));
      method.predicted = method.metrics.predicted;
    } else {
      method.predicted = argmax_rows(scores, images, classes);
    }
  };
  const auto same_for_all = [&](const std::vector<std::string>& ids) {
    return std::vector<std::vector<std::string>>(static_cast<std::size_t>(classes), ids);
  };

  MethodResult mll;
  mll.name = "MLL";
  mll.description = "per-class selection (k=" + std::to_string(sel.k) + "), entropy-weighted";
  for (const auto& list : sel.chosen) {
    std::vector<std::string> ids;
    for (const auto& c : list) ids.push_back(c.model);
    mll.models.push_back(ids);
  }
  finish(mll, run(mll.models));
  report.methods.push_back(mll);
  if (!options.baselines) return;

  std::vector<std::string> candidates;
  for (const auto& id : sel.models) {
    if (predictions.count(id)) candidates.push_back(id);
  }
  std::vector<std::string> ranked = candidates;
  std::stable_sort(ranked.begin(), ranked.end(), [&](const std::string& a, const std::string& b) {
    return report.general.at(a) > report.general.at(b);
  });
  for (const std::size_t top : {std::size_t{1}, std::size_t{3}}) {
    if (ranked.empty()) break;
    MethodResult inb;
    inb.name = top == 1 ? "INB" : "INB-3";
    const std::vector<std::string> ids(
        ranked.begin(), ranked.begin() + static_cast<long>(std::min(top, ranked.size())));
    inb.description =
        "best general model" + std::string(top == 1 ? "" : "s") + " by " + report.general_source;
    inb.models = same_for_all(ids);
    finish(inb, run(inb.models));
    report.methods.push_back(inb);
  }

  if (!candidates.empty() && options.random_seeds > 0) {
    MethodResult random;
    random.name = "Random";
    random.runs = options.random_seeds;
    random.description = "k=" + std::to_string(sel.k) + " random models per class, " +
                         std::to_string(options.random_seeds) + " seeds";
    std::vector<double> t1, t5, rc;
    for (int s = 0; s < options.random_seeds; ++s) {
      std::mt19937_64 rng(options.random_seed + static_cast<std::uint64_t>(s));
      std::vector<std::vector<std::string>> lists;
      for (std::int64_t y = 0; y < classes; ++y) {
        auto pool = candidates;
        std::shuffle(pool.begin(), pool.end(), rng);
        pool.resize(std::min(sel.k, pool.size()));
        lists.push_back(pool);
      }
      MethodResult one;
      finish(one, run(lists));
      if (s == 0) {
        random.models = lists;
        random.predicted = one.predicted;
        random.evaluated = one.evaluated;
        random.metrics = one.metrics;
      }
      t1.push_back(one.metrics.top1);
      t5.push_back(one.metrics.top5);
      rc.push_back(one.metrics.mean_class_recall);
    }
    const auto mean_std = [](const std::vector<double>& v, double* mean, double* sd) {
      double m = 0.0;
      for (const auto x : v) m += x;
      m /= static_cast<double>(v.size());
      double var = 0.0;
      for (const auto x : v) var += (x - m) * (x - m);
      *mean = m;
      *sd = std::sqrt(var / static_cast<double>(v.size()));
    };
    if (random.evaluated) {
      mean_std(t1, &random.top1_mean, &random.top1_std);
      mean_std(t5, &random.top5_mean, &random.top5_std);
      mean_std(rc, &random.recall_mean, &random.recall_std);
    }
    report.methods.push_back(random);
  }

  if (!candidates.empty()) {
    MethodResult all;
    all.name = "All models";
    all.description = "every candidate, entropy-weighted";
    all.models = same_for_all(candidates);
    finish(all, run(all.models));
    report.methods.push_back(all);
  }

  if (report.labeled && !candidates.empty()) {
    MethodResult oracle;
    oracle.name = "Oracle";
    double best = -1.0;
    for (const auto& id : candidates) {
      MethodResult one;
      finish(one, run(same_for_all({id})));
      if (one.metrics.top1 > best) {
        best = one.metrics.top1;
        oracle.metrics = one.metrics;
        oracle.predicted = one.predicted;
        oracle.models = same_for_all({id});
        oracle.description = "best single model on the target labels: " + id;
      }
    }
    set_metrics(oracle, oracle.metrics);
    report.methods.push_back(oracle);
  }
}

ReuseReport run_reuse(const store::Store& store, const select::Task& task,
                      const select::SelectionFile& selection, const zoo::ZooManifest& zoo,
                      const ReuseOptions& options) {
  if (selection.task != task.name || selection.classes != task.classes) {
    MLL_THROW(DataError, "the selection is for task '", selection.task, "' with ",
              selection.classes.size(), " classes, not for ", task.path, " ('", task.name, "', ",
              task.classes.size(), " classes)");
  }
  ReuseReport report;
  report.task = task.name;
  report.classes = task.classes;
  report.selection = selection;
  report.labeled = task.labeled;
  for (auto& image : select::list_images(task)) {
    report.images.push_back(image.path);
    report.labels.push_back(image.label);
  }

  // Every model the selection chose must be a done model of the store.
  const auto done = [&](const std::string& id) {
    const auto r = store.find_model(id);
    return r && r->status == store::ModelStatus::kDone;
  };
  std::vector<std::string> needed;
  const auto need = [&](const std::string& id) {
    if (std::find(needed.begin(), needed.end(), id) == needed.end()) needed.push_back(id);
  };
  for (std::size_t y = 0; y < selection.chosen.size(); ++y) {
    for (const auto& c : selection.chosen[y]) {
      if (!done(c.model)) {
        MLL_THROW(DataError, "the selection chose model '", c.model, "' for class '",
                  selection.classes[y], "', but the store ", store.path(),
                  " has no labeled model of that id");
      }
      need(c.model);
    }
  }
  std::vector<std::string> candidates;
  for (const auto& id : selection.models) {
    if (done(id)) {
      candidates.push_back(id);
    } else {
      report.warnings.push_back("candidate '" + id + "' of the selection is not in the store: " +
                                "left out of the baselines");
    }
  }
  report.selection.models = candidates;
  report.general_source = general_accuracy(store, candidates, &report.general);
  if (options.baselines) {
    for (const auto& id : candidates) need(id);
  }
  report.models_run = needed;

  const auto t0 = std::chrono::steady_clock::now();
  std::map<std::string, MatrixD> predictions;
  for (const auto& id : needed) {
    const auto spec = spec_from_store(store, zoo, id);
    zoo::check_labeled_file(spec, store.find_model(id)->model_sha256, store.path() + ".digests");
    log::info("reuse: running ", id, " over ", report.images.size(), " images");
    predictions.emplace(id, predict_model(spec, report.images, task.classes, options));
  }
  report.predict_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  combine(report, predictions, options);

  // Heatmap: each candidate's node_top1 over the task's matched nodes.
  std::vector<std::int32_t> nodes;
  for (std::size_t y = 0; y < selection.node_wnids.size(); ++y) {
    for (const auto& wnid : selection.node_wnids[y]) {
      const auto v = store.graph().index_of(wnid);
      if (v >= 0 && std::find(nodes.begin(), nodes.end(), v) == nodes.end()) nodes.push_back(v);
    }
  }
  std::sort(nodes.begin(), nodes.end());
  for (const auto v : nodes)
    report.heat_nodes.push_back(store.graph().node(static_cast<std::size_t>(v)).name);
  for (const auto& id : candidates) {
    const auto labels = store.read_labels(id);
    report.heat_models.push_back(id);
    for (const auto v : nodes)
      report.heat_values.push_back(labels.node_top1.at(static_cast<std::size_t>(v)));
  }
  return report;
}

}  // namespace mll::reuse
