#include "mll/label/job.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "mll/core/cpus.hpp"
#include "mll/core/error.hpp"
#include "mll/core/hash.hpp"
#include "mll/core/log.hpp"
#include "mll/core/signals.hpp"
#include "mll/core/time.hpp"
#include "mll/core/version.hpp"
#include "mll/feed/crop_cache.hpp"
#include "mll/feed/inputs.hpp"
#include "mll/feed/parity.hpp"
#include "mll/feed/prefetch.hpp"
#include "mll/label/labels.hpp"
#include "mll/schedule/work_rule.hpp"
#include "mll/zoo/digests.hpp"

namespace mll::label {
namespace {

using Ranges = std::vector<std::pair<std::int64_t, std::int64_t>>;

std::int64_t round_up(std::int64_t value, std::int64_t step) {
  return (value + step - 1) / step * step;
}

// The parts of `missing` that fall in [begin, end).
Ranges clip(const std::vector<store::Unit>& missing, store::UnitKind kind, std::int64_t begin,
            std::int64_t end) {
  Ranges out;
  for (const auto& u : missing) {
    if (u.kind != kind) continue;
    const std::int64_t b = std::max(u.begin, begin), e = std::min(u.end, end);
    if (b < e) {
      if (!out.empty() && out.back().second == b) {
        out.back().second = e;
      } else {
        out.emplace_back(b, e);
      }
    }
  }
  return out;
}

bool intersects(const Ranges& ranges, std::int64_t begin, std::int64_t end) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const auto& r) { return r.first < end && begin < r.second; });
}

bool contains(const Ranges& ranges, std::int64_t row) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const auto& r) { return r.first <= row && row < r.second; });
}

}  // namespace

namespace {

// The record of a model whose file digest is already known.
store::ModelRecord record_with(const zoo::ModelSpec& spec, std::string sha256) {
  store::ModelRecord record;
  record.id = spec.id;
  record.status = store::ModelStatus::kPending;
  record.model_sha256 = std::move(sha256);
  record.sidecar_json = zoo::sidecar_json(spec);
  record.registered_utc = utc_now();
  return record;
}

}  // namespace

schedule::ModelMemory model_memory(const zoo::ModelSpec& spec, const LabelOptions& options) {
  const double bytes = options.run.precision == zoo::Precision::kFp32 ? 4.0 : 2.0;
  std::int64_t params = spec.params;
  if (params <= 0) {
    // A sidecar without a parameter count: the archive's size, taken as float32 weights (what
    // the exporter writes).
    std::error_code ec;
    const auto size = std::filesystem::file_size(spec.model_path(), ec);
    params = ec ? 0 : static_cast<std::int64_t>(size / 4);
  }
  const auto pre = feed::preprocess_spec(spec);
  return schedule::model_memory(spec.id, params, bytes, options.batch, pre.height, pre.width,
                                bytes);
}

namespace {

// Refuses, before anything is registered, a model that could never be loaded under the budget.
void check_memory(const std::vector<zoo::ModelSpec>& specs, const LabelOptions& options) {
  if (options.memory <= 0) return;  // no limit
  for (const auto& spec : specs) {
    schedule::split_group({model_memory(spec, options)}, options.memory);
  }
}

// Replaces every group whose models do not fit the budget together by sub-groups that do.
std::vector<Group> split_groups(std::vector<Group> groups, const LabelOptions& options) {
  std::vector<Group> out;
  for (auto& group : groups) {
    std::vector<schedule::ModelMemory> memory;
    for (const auto& spec : group.models) memory.push_back(model_memory(spec, options));
    const auto parts = schedule::split_group(memory, options.memory);
    if (parts.size() > 1) {
      log::info("the ", group.models.size(), " models of preprocessing config ", group.key,
                " need about ", schedule::format_bytes(schedule::group_footprint(memory)),
                ", more than the memory budget of ", schedule::format_bytes(options.memory),
                ": labeled in ", parts.size(), " sub-groups that share the decoded images");
    }
    for (std::size_t p = 0; p < parts.size(); ++p) {
      Group sub{group.key, group.preprocess,    {},
                0.0,       static_cast<int>(p), static_cast<int>(parts.size()),
                0};
      std::vector<schedule::ModelMemory> members;
      for (const std::size_t i : parts[p]) {
        sub.models.push_back(group.models[i]);
        sub.gflops_per_image +=
            group.models[i].gflops_per_image > 0 ? group.models[i].gflops_per_image : 1.0;
        members.push_back(memory[i]);
      }
      sub.memory = schedule::group_footprint(members);
      out.push_back(std::move(sub));
    }
  }
  return out;
}

// The cost rule's cut (schedule/work_rule.hpp) of the planned groups: sub-groups in the rule's
// order. Every sub-group of one preprocessing config gets the config's smallest unit, so that
// their shards cover the same rows and share the crops of each shard (decode once).
std::vector<Group> cost_groups(const std::vector<Group>& groups, std::int64_t images,
                               const LabelOptions& options) {
  std::vector<schedule::MakespanModel> models;
  std::vector<const zoo::ModelSpec*> specs;
  std::vector<std::size_t> group_of;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    for (const auto& spec : groups[g].models) {
      const auto memory = model_memory(spec, options);
      const double bytes = options.run.precision == zoo::Precision::kFp32 ? 4.0 : 2.0;
      models.push_back({spec.id, groups[g].key,
                        static_cast<std::int64_t>(static_cast<double>(memory.weights) / bytes),
                        spec.gflops_per_image > 0 ? spec.gflops_per_image : 1.0,
                        groups[g].preprocess.height});
      specs.push_back(&spec);
      group_of.push_back(g);
    }
  }
  schedule::RuleOptions rule_options;
  rule_options.memory = std::max<std::int64_t>(0, options.memory);
  rule_options.batch = options.batch;
  rule_options.bytes_per_param = options.run.precision == zoo::Precision::kFp32 ? 4.0 : 2.0;
  rule_options.bytes_per_value = rule_options.bytes_per_param;
  const auto rule = schedule::work_rule(models, std::max(1, options.workers),
                                        std::max<std::int64_t>(1, images), rule_options);
  std::map<std::string, std::int64_t> unit_of_key;
  std::map<std::string, int> parts_of_key;
  for (const auto& sub : rule.subgroups) {
    auto [it, fresh] = unit_of_key.emplace(sub.key, sub.unit);
    if (!fresh) it->second = std::min(it->second, sub.unit);
    ++parts_of_key[sub.key];
  }
  std::vector<Group> out;
  for (const auto& sub : rule.subgroups) {
    const Group& parent = groups[group_of[sub.models.front()]];
    Group g{sub.key,
            parent.preprocess,
            {},
            sub.gflops_per_image,
            sub.part,
            parts_of_key[sub.key],
            sub.footprint,
            unit_of_key[sub.key]};
    for (const std::size_t i : sub.models) g.models.push_back(*specs[i]);
    out.push_back(std::move(g));
  }
  log::info("work cut by cost for ", options.workers, " rank(s): ", out.size(),
            " sub-group(s), sub-group cap ", schedule::format_bytes(rule.cap));
  return out;
}

}  // namespace

store::ModelRecord model_record(const zoo::ModelSpec& spec) {
  return record_with(spec, sha256_file(spec.model_path()));
}

// ---------------------------------------------------------------------------------------------
// Planning

WorkPlan plan_work(store::Store& store, const std::vector<zoo::ModelSpec>& specs,
                   const LabelOptions& options) {
  if (options.batch <= 0 || options.text_batch <= 0 || options.unit_images <= 0 ||
      options.unit_captions <= 0 || options.decode_threads <= 0 || options.prefetch_batches <= 0 ||
      options.label_block <= 0) {
    MLL_THROW(UsageError,
              "batch sizes, unit sizes, block sizes and thread counts must be positive");
  }
  check_memory(specs, options);
  WorkPlan plan;
  std::map<std::string, std::size_t> group_of_key;
  std::map<std::string, std::vector<store::Unit>> missing;
  // Hashing the model files (hundreds of MB each) is the first fixed cost of every run: files
  // unchanged since a run remembered their digest are not hashed again (digests.hpp), the others
  // concurrently, up to one per core.
  zoo::ModelDigests digests(store.path() + ".digests");
  std::vector<std::future<store::ModelRecord>> records;
  // Per model: the file's state before it was hashed (none for a remembered digest).
  std::vector<std::optional<zoo::ModelDigests::FileState>> hashed;
  const std::size_t cores = static_cast<unsigned>(usable_cpu_count());
  const auto start_hashing = [&](std::size_t k) {
    if (k >= specs.size()) return;
    const auto known = options.rehash ? std::nullopt : digests.lookup(specs[k].model_path());
    if (known) {
      log::debug("model '", specs[k].id, "': file unchanged since its digest was remembered; ",
                 "not hashed again");
      std::promise<store::ModelRecord> ready;
      ready.set_value(record_with(specs[k], *known));
      records.push_back(ready.get_future());
      hashed.emplace_back();
    } else {
      hashed.push_back(zoo::ModelDigests::state_of(specs[k].model_path()));
      records.push_back(
          std::async(std::launch::async, [&spec = specs[k]] { return model_record(spec); }));
    }
  };
  for (std::size_t k = 0; k < cores; ++k) start_hashing(k);
  for (std::size_t k = 0; k < specs.size(); ++k) {
    const auto& spec = specs[k];
    store::ModelRecord record;
    try {
      record = records[k].get();
      if (hashed[k]) {
        digests.remember(spec.model_path(), record.model_sha256, *hashed[k]);
      } else if (const auto existing = store.find_model(spec.id);
                 existing && existing->model_sha256 != record.model_sha256) {
        // A remembered digest that disagrees with the store decides nothing (the digests file
        // is only a cache): the file's own bytes do.
        log::warn("model '", spec.id, "': the digest remembered for ", spec.model_path(),
                  " is not the store's; hashing the file");
        const auto before = zoo::ModelDigests::state_of(spec.model_path());
        record = model_record(spec);
        if (before) digests.remember(spec.model_path(), record.model_sha256, *before);
      }
      start_hashing(k + cores);
    } catch (const Error& e) {
      start_hashing(k + cores);
      if (options.fail_fast) throw;
      // Without a readable file there is no identity to record in the store.
      log::error("model '", spec.id, "': ", e.what());
      plan.failed.push_back(spec.id);
      continue;
    }
    store.register_model(record);
    auto units = store.missing_units(spec.id, std::int64_t{1} << 40, std::int64_t{1} << 40);
    const auto existing = store.find_model(spec.id);
    if (units.empty() && existing && existing->status == store::ModelStatus::kDone) {
      plan.skipped.push_back(spec.id);
      continue;
    }
    // A model with every row stored but not yet finished (a run killed between its last commit
    // and finish_model) joins its group with no shards: the committer finishes it.
    const auto pre = feed::preprocess_spec(spec);
    const std::string key = feed::preprocess_key(pre);
    auto [it, inserted] = group_of_key.emplace(key, plan.groups.size());
    if (inserted) plan.groups.push_back(Group{key, pre, {}, 0.0});
    Group& group = plan.groups[it->second];
    group.models.push_back(spec);
    group.gflops_per_image += spec.gflops_per_image > 0 ? spec.gflops_per_image : 1.0;
    missing[spec.id] = std::move(units);
  }
  digests.save();
  // Longest first: the config with the most compute starts first (its load time is paid once);
  // its sub-groups follow one another, the first one decoding for the rest.
  std::stable_sort(plan.groups.begin(), plan.groups.end(), [](const Group& a, const Group& b) {
    return a.gflops_per_image > b.gflops_per_image;
  });
  const auto captions = static_cast<std::int64_t>(store.captions().size());
  const auto images = static_cast<std::int64_t>(store.probe().image_count());
  plan.groups = options.cost_rule ? cost_groups(plan.groups, images, options)
                                  : split_groups(std::move(plan.groups), options);
  const std::int64_t text_step = round_up(options.unit_captions, options.text_batch);
  const std::int64_t image_step = round_up(options.unit_images, options.batch);
  for (std::size_t g = 0; g < plan.groups.size(); ++g) {
    const auto add = [&](store::UnitKind kind, std::int64_t total, std::int64_t step) {
      for (std::int64_t begin = 0; begin < total; begin += step) {
        const std::int64_t end = std::min(total, begin + step);
        Shard shard{static_cast<int>(g), kind, begin, end, {}, {}};
        for (const auto& spec : plan.groups[g].models) {
          Ranges need = clip(missing[spec.id], kind, begin, end);
          if (need.empty()) continue;
          shard.models.push_back(spec.id);
          shard.needed.push_back(std::move(need));
        }
        if (!shard.models.empty()) plan.shards.push_back(std::move(shard));
      }
    };
    // Images first: the first shard a process runs then starts decoding before its models (and
    // the model engine, libtorch) load, so that start-up overlaps the decode-bound part; the
    // captions, ~1% of the rows, follow on the loaded models.
    const std::int64_t unit = plan.groups[g].unit;
    add(store::UnitKind::kImage, images, unit > 0 ? round_up(unit, options.batch) : image_step);
    add(store::UnitKind::kText, captions, text_step);
  }
  return plan;
}

// ---------------------------------------------------------------------------------------------
// Executor

std::vector<std::string> probe_image_paths(const store::Store& store) {
  std::vector<std::string> paths;
  paths.reserve(store.probe().image_count());
  for (std::size_t i = 0; i < store.probe().image_count(); ++i) {
    paths.push_back(store.probe().path_of(i));
  }
  return paths;
}

struct Executor::Impl {
  std::vector<Group> groups;
  std::vector<std::string> captions;
  std::vector<std::string> image_paths;
  std::vector<feed::ImageCheck> checks;  // empty: unchecked
  LabelOptions options;
  int loaded = -1;
  std::map<std::string, std::unique_ptr<zoo::Model>> models;
  // The loaded models' tokenizers, each built on a thread of its own once its model is loaded:
  // a BPE tokenizer takes ~0.1 s to build (49k merges), which the caption shards, run after the
  // image shards, then find done instead of spending it while the decode threads wait.
  std::map<std::string, std::shared_future<std::shared_ptr<tokenize::Tokenizer>>> tokenizers;
  int model_threads = 0;                // the zoo::set_threads count in use (0: unknown)
  std::set<std::string> broken;         // failed to load or the parity guard: not retried
  std::set<std::string> parity_passed;  // measured once per model and process

  const zoo::ModelSpec& spec(int group, const std::string& id) const {
    for (const auto& s : groups.at(static_cast<std::size_t>(group)).models) {
      if (s.id == id) return s;
    }
    MLL_THROW(InternalError, "model '", id, "' is not in group ", group);
  }

  // The loaded model, or nullptr after recording why it cannot be used.
  zoo::Model* model(int group, const std::string& id, ShardResult& result) {
    if (loaded != group) {
      models.clear();  // keep one group on the device at a time
      tokenizers.clear();
      loaded = group;
    }
    if (broken.count(id)) return nullptr;
    auto it = models.find(id);
    if (it != models.end()) return it->second.get();
    std::unique_ptr<zoo::Model> loaded_model;
    try {
      loaded_model = std::make_unique<zoo::Model>(spec(group, id), options.run);
    } catch (const Error& e) {
      if (e.code() == ExitCode::kUsage) throw;  // the device, not the model
      broken.insert(id);
      result.failures.emplace_back(id, cat("model '", id, "' cannot be loaded: ", e.what()));
      return nullptr;
    }
    if (!parity_holds(*loaded_model, result)) {
      broken.insert(id);
      return nullptr;
    }
    tokenizers[id] =
        std::async(std::launch::async, [&model_spec = spec(group, id)] {
          return std::shared_ptr<tokenize::Tokenizer>(feed::make_tokenizer(model_spec));
        }).share();
    return models.emplace(id, std::move(loaded_model)).first->second.get();
  }

  // The parity guard before a model's first rows (feed/parity.hpp): false, with the failure
  // recorded, when mll's embeddings of the parity set differ from the sidecar's reference.
  bool parity_holds(const zoo::Model& m, ShardResult& result) {
    const std::string& id = m.id();
    const double min_cosine = options.parity_min_cosine >= 0.0
                                  ? options.parity_min_cosine
                                  : feed::default_min_cosine(options.run.precision);
    if (!m.spec().reference || min_cosine == 0.0 || parity_passed.count(id)) return true;
    try {
      const zoo::ParityReport report = feed::measure_parity(m, min_cosine);
      if (!report.passed()) {
        result.failures.emplace_back(id, report.message(id));
        return false;
      }
      log::info(report.message(id));
      parity_passed.insert(id);
      result.parity.emplace_back(id, report.json());
      return true;
    } catch (const Error& e) {
      if (e.code() == ExitCode::kUsage || e.code() == ExitCode::kIoError) throw;
      result.failures.emplace_back(id, cat("model '", id, "': parity check: ", e.what()));
      return false;
    }
  }

  // Appends the needed rows of a computed batch to the model's runs.
  static void keep(std::vector<ModelRows>& runs, const std::string& id, store::UnitKind kind,
                   const Ranges& needed, std::int64_t first, const Matrix& e) {
    std::int64_t i = 0;
    while (i < e.rows) {
      if (!contains(needed, first + i)) {
        ++i;
        continue;
      }
      std::int64_t j = i;
      while (j < e.rows && contains(needed, first + j)) ++j;
      ModelRows* run = nullptr;
      for (auto& r : runs) {
        if (r.model == id && r.end == first + i) run = &r;
      }
      if (run == nullptr) {
        runs.push_back(ModelRows{id, kind, first + i, first + i, e.cols, {}});
        run = &runs.back();
      }
      if (run->dim != e.cols) {
        MLL_THROW(DataError, "model '", id, "': embedding width changed from ", run->dim, " to ",
                  e.cols);
      }
      run->rows.insert(run->rows.end(), e.row(i), e.row(j));
      run->end = first + j;
      i = j;
    }
  }

  void drop(std::vector<ModelRows>& runs, const std::string& id) {
    runs.erase(
        std::remove_if(runs.begin(), runs.end(), [&](const ModelRows& r) { return r.model == id; }),
        runs.end());
  }

  // The model's thread count for a shard that decodes images or one that does not
  // (LabelOptions::model_threads): set before the shard's models load or run.
  void use_model_threads(bool decoding) {
    const int n = decoding ? options.model_threads : options.model_threads_without_decoding;
    if (n <= 0 || n == model_threads) return;
    zoo::set_threads(n);
    log::debug("model threads: ", n, decoding ? "" : " (nothing to decode)");
    model_threads = n;
  }

  void run_text(const Shard& shard, const StopFlag& stop, ShardResult& result) {
    use_model_threads(false);
    const std::int64_t step = options.text_batch;
    for (std::size_t k = 0; k < shard.models.size(); ++k) {
      const std::string& id = shard.models[k];
      zoo::Model* m = model(shard.group, id, result);
      if (m == nullptr) continue;
      try {
        // Rethrows what building it threw.
        const std::shared_ptr<tokenize::Tokenizer> tokenizer = tokenizers.at(id).get();
        for (std::int64_t first = shard.begin; first < shard.end; first += step) {
          const std::int64_t last = std::min(shard.end, first + step);
          if (!intersects(shard.needed[k], first, last)) continue;
          const std::vector<std::string> texts(captions.begin() + first, captions.begin() + last);
          const auto ids = tokenizer->encode_batch(texts);
          const auto t0 = std::chrono::steady_clock::now();
          const auto e = m->encode_text(ids.data(), static_cast<int>(last - first),
                                        tokenizer->context_length());
          result.forward_seconds +=
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          keep(result.rows, id, store::UnitKind::kText, shard.needed[k], first, e);
          if (stop.requested()) {
            result.stopped = true;
            return;
          }
        }
      } catch (const Error& e) {
        if (e.code() == ExitCode::kUsage || e.code() == ExitCode::kIoError) throw;
        drop(result.rows, id);
        result.failures.emplace_back(id, cat("model '", id, "' failed on captions: ", e.what()));
      }
    }
  }

  void run_images(const Shard& shard, const StopFlag& stop, ShardResult& result) {
    const Group& group = groups.at(static_cast<std::size_t>(shard.group));
    image::PreprocessSpec preprocess = group.preprocess;
    preprocess.fast_jpeg_decode = options.fast_decode;
    const std::int64_t step = options.batch;
    std::vector<std::int64_t> batches, rows;
    std::vector<std::string> paths;
    for (std::int64_t first = shard.begin; first < shard.end; first += step) {
      const std::int64_t last = std::min(shard.end, first + step);
      bool needed = false;
      for (const auto& ranges : shard.needed) needed |= intersects(ranges, first, last);
      if (!needed) continue;
      batches.push_back(first);
      paths.insert(paths.end(), image_paths.begin() + first, image_paths.begin() + last);
      for (std::int64_t row = first; row < last; ++row) rows.push_back(row);
    }
    // The crops of the whole shard are cached (or read back) together; a shard needed only in
    // part reads a cache file when there is one but does not write one.
    // The cache only saves time: when it cannot be used, labeling goes on without it.
    // The sub-groups of a split group share their crops even without --image-cache.
    const std::string& cache_dir = !options.image_cache.empty() ? options.image_cache
                                   : group.parts > 1            ? options.shared_crops
                                                                : options.image_cache;
    std::unique_ptr<feed::CropCache> cache;
    if (!cache_dir.empty()) {
      try {
        cache = std::make_unique<feed::CropCache>(
            cache_dir, preprocess, shard.begin, shard.end,
            std::vector<std::string>(image_paths.begin() + shard.begin,
                                     image_paths.begin() + shard.end));
        if (!cache->hit() && static_cast<std::int64_t>(rows.size()) == shard.end - shard.begin) {
          cache->start_writing();
        } else if (!cache->hit()) {
          cache.reset();
        }
      } catch (const Error& e) {
        log::warn("image cache not used for rows [", shard.begin, ", ", shard.end, "): ", e.what());
        cache.reset();
      }
    }
    // Crops read from the cache leave the decode threads a copy and a normalisation each.
    use_model_threads(!(cache && cache->hit()));
    std::vector<feed::ImageCheck> shard_checks;
    if (!checks.empty()) {
      for (const auto row : rows) shard_checks.push_back(checks[static_cast<std::size_t>(row)]);
    }
    auto prefetcher = std::make_unique<feed::Prefetcher>(
        std::move(paths), preprocess, static_cast<int>(step), options.decode_threads,
        options.prefetch_batches, options.prefetch_ahead_bytes, cache.get(), std::move(rows),
        std::move(shard_checks));
    // Decoding starts while the shard's models load, once each decode thread is past its first
    // image (Prefetcher::wait_until_started: otherwise the first load of the engine stalls them).
    prefetcher->wait_until_started();
    std::vector<zoo::Model*> loaded_models;
    for (const auto& id : shard.models) loaded_models.push_back(model(shard.group, id, result));
    feed::Prefetcher::Batch batch;
    std::size_t index = 0;
    std::vector<char> failed(shard.models.size(), 0);
    try {
      while (prefetcher->next(batch)) {
        const std::int64_t first = batches[index++];
        const auto runs = [&](std::size_t k) {
          return loaded_models[k] != nullptr && !failed[k] &&
                 intersects(shard.needed[k], first, first + batch.count);
        };
        std::size_t last = shard.models.size();
        while (last > 0 && !runs(last - 1)) --last;
        for (std::size_t k = 0; k < shard.models.size(); ++k) {
          if (!runs(k)) continue;
          try {
            const auto t0 = std::chrono::steady_clock::now();
            // The batch's last model may consume the buffer: it goes back to the prefetcher.
            const int h = group.preprocess.height, w = group.preprocess.width;
            const auto e =
                k + 1 == last
                    ? loaded_models[k]->encode_images_consuming(batch.pixels(), batch.count, h, w)
                    : loaded_models[k]->encode_images(batch.pixels(), batch.count, h, w);
            result.forward_seconds +=
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            keep(result.rows, shard.models[k], store::UnitKind::kImage, shard.needed[k], first, e);
          } catch (const Error& e) {
            if (e.code() == ExitCode::kUsage || e.code() == ExitCode::kIoError) throw;
            failed[k] = 1;
            drop(result.rows, shard.models[k]);
            result.failures.emplace_back(
                shard.models[k],
                cat("model '", shard.models[k], "' failed on probe images: ", e.what()));
          }
        }
        if (stop.requested()) {
          result.stopped = true;
          break;
        }
      }
    } catch (const DataError& e) {
      // One bad probe image ends this shard, not the run: the other shards go on, and the run
      // ends with the list (Coordinator).
      result.images_decoded += prefetcher->decoded();
      result.unreadable = e.what();
      result.rows.clear();
      return;
    } catch (...) {
      result.images_decoded += prefetcher->decoded();
      throw;
    }
    result.images_decoded += prefetcher->decoded();
    prefetcher.reset();  // joins the workers: the cache file is complete or never will be
    if (cache && !cache->hit()) {
      try {
        cache->finish_writing();
      } catch (const Error& e) {
        log::warn("image cache not written: ", e.what());
      }
    }
  }
};

Executor::Executor(std::vector<Group> groups, std::vector<std::string> captions,
                   std::vector<std::string> image_paths, LabelOptions options,
                   std::vector<std::int64_t> image_sizes, std::vector<std::int64_t> image_digests)
    : impl_(std::make_unique<Impl>()) {
  MLL_CHECK(image_sizes.size() == image_digests.size() &&
                (image_sizes.empty() || image_sizes.size() == image_paths.size()),
            "image checks do not match the paths");
  for (std::size_t i = 0; i < image_sizes.size(); ++i) {
    impl_->checks.push_back(feed::ImageCheck{image_sizes[i], image_digests[i]});
  }
  impl_->groups = std::move(groups);
  impl_->captions = std::move(captions);
  impl_->image_paths = std::move(image_paths);
  impl_->options = std::move(options);
  impl_->model_threads = impl_->options.model_threads;  // applied by distributed::configure_process
}

Executor::~Executor() = default;

int Executor::loaded_group() const noexcept { return impl_->loaded; }

ShardResult Executor::run(const Shard& shard, const StopFlag& stop) {
  MLL_CHECK(shard.models.size() == shard.needed.size(), "shard without needed ranges");
  ShardResult result;
  if (shard.kind == store::UnitKind::kText) {
    impl_->run_text(shard, stop, result);
  } else {
    impl_->run_images(shard, stop, result);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Committer

Committer::Committer(store::Store& store, const WorkPlan& plan, const LabelOptions& options)
    : store_(store), plan_(plan), options_(options), started_utc_(utc_now()) {
  report_.skipped = plan.skipped;
  report_.failed = plan.failed;
  const nlohmann::json config = {{"batch", options.batch},
                                 {"text_batch", options.text_batch},
                                 {"device", options.run.device.str()},
                                 {"precision", zoo::to_string(options.run.precision)},
                                 {"fast_decode", options.fast_decode},
                                 {"mll_version", version()}};
  config_json_ = config.dump();
}

bool Committer::failed(const std::string& model) const {
  return std::find(report_.failed.begin(), report_.failed.end(), model) != report_.failed.end();
}

void Committer::commit(const ShardResult& result) {
  report_.images_decoded += result.images_decoded;
  report_.forward_seconds += result.forward_seconds;
  for (const auto& [model, report] : result.parity) parity_[model] = report;
  for (const auto& [model, message] : result.failures) {
    if (options_.fail_fast) MLL_THROW(DataError, message);
    if (failed(model)) continue;
    log::error(message);
    store_.fail_model(model, message);
    report_.failed.push_back(model);
  }
  for (const auto& run : result.rows) {
    if (failed(run.model) || run.end <= run.begin) continue;
    store_.commit_unit(run.model, {run.kind, run.begin, run.end}, run.rows.data(), run.dim);
    if (run.kind == store::UnitKind::kImage) report_.image_rows += run.end - run.begin;
  }
}

std::vector<std::string> Committer::complete_models() const {
  std::vector<std::string> out;
  for (const auto& group : plan_.groups) {
    for (const auto& spec : group.models) {
      const auto& done = report_.labeled;
      if (failed(spec.id) || std::find(done.begin(), done.end(), spec.id) != done.end()) continue;
      if (store_.missing_units(spec.id, std::int64_t{1} << 40, std::int64_t{1} << 40).empty()) {
        out.push_back(spec.id);
      }
    }
  }
  return out;
}

void Committer::finish(const std::string& model, const store::ModelLabels& labels) {
  for (const auto& group : plan_.groups) {
    for (const auto& spec : group.models) {
      if (spec.id != model) continue;
      store::FinishInfo info;
      info.logit_scale = spec.logit_scale;
      info.config_json = config_json_;
      info.started_utc = started_utc_;
      if (const auto it = parity_.find(spec.id); it != parity_.end()) info.parity_json = it->second;
      store_.finish_model(spec.id, labels, info);
      report_.labeled.push_back(spec.id);
      log::info("model '", spec.id, "' labeled");
      return;
    }
  }
  MLL_THROW(InternalError, "model '", model, "' is not in the plan");
}

void Committer::finish_complete() {
  for (const auto& id : complete_models()) {
    finish(id, compute_labels(store_, id, options_.label_block));
  }
}

}  // namespace mll::label
