#include "mll/schedule/makespan.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <iomanip>
#include <map>
#include <queue>
#include <set>
#include <sstream>
#include <utility>

#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/schedule/memory.hpp"
#include "mll/schedule/scheduler.hpp"

namespace mll::schedule {

double StrategyResult::total_load_s() const {
  double s = 0.0;
  for (const auto& g : gpus) s += g.load_s;
  return s;
}

double StrategyResult::total_hidden_load_s() const {
  double s = 0.0;
  for (const auto& g : gpus) s += g.hidden_load_s;
  return s;
}

std::int64_t StrategyResult::memory_max() const {
  std::int64_t bytes = 0;
  for (const auto& g : gpus) bytes = std::max(bytes, g.memory);
  return bytes;
}

double StrategyResult::total_decode_stall_s() const {
  double s = 0.0;
  for (const auto& g : gpus) s += g.decode_stall_s;
  return s;
}

double StrategyResult::busy_min_s() const {
  double s = gpus.empty() ? 0.0 : gpus.front().busy_s;
  for (const auto& g : gpus) s = std::min(s, g.busy_s);
  return s;
}

double StrategyResult::busy_max_s() const {
  double s = 0.0;
  for (const auto& g : gpus) s = std::max(s, g.busy_s);
  return s;
}

double StrategyResult::busy_mean_s() const {
  double s = 0.0;
  for (const auto& g : gpus) s += g.busy_s;
  return gpus.empty() ? 0.0 : s / static_cast<double>(gpus.size());
}

std::string preprocess_group_key(const zoo::ModelSpec& spec) {
  std::ostringstream key;
  key.precision(9);
  key << spec.image_size << " " << spec.resize_mode << " " << spec.crop << " " << spec.interpolation
      << " mean=" << spec.mean[0] << "," << spec.mean[1] << "," << spec.mean[2]
      << " std=" << spec.stddev[0] << "," << spec.stddev[1] << "," << spec.stddev[2];
  return key.str();
}

std::vector<MakespanModel> makespan_models(const std::vector<zoo::ModelSpec>& specs) {
  std::vector<MakespanModel> models;
  for (const auto& spec : specs) {
    if (spec.gflops_per_image <= 0.0) {
      MLL_THROW(DataError, "model '", spec.id,
                "': the sidecar has no gflops_per_image; the planner needs the cost of an image");
    }
    if (spec.params <= 0) {
      MLL_THROW(DataError, "model '", spec.id,
                "': the sidecar has no params; the planner needs the model size for load time");
    }
    models.push_back(
        {spec.id, preprocess_group_key(spec), spec.params, spec.gflops_per_image, spec.image_size});
  }
  return models;
}

namespace {

using json = nlohmann::json;

double positive_number(const json& m, const char* field, const std::string& where) {
  if (!m.contains(field) || !m[field].is_number() || !(m[field].get<double>() > 0.0)) {
    MLL_THROW(DataError, where, ": field '", field, "' must be a positive number");
  }
  return m[field].get<double>();
}

// The group key of a description entry: its "preprocess" family when given, else the geometry
// and normalisation fields a sidecar would carry.
std::string description_key(const json& m, const std::string& where) {
  if (m.contains("preprocess")) {
    if (!m["preprocess"].is_string()) {
      MLL_THROW(DataError, where, ": field 'preprocess' must be a string");
    }
    return m["preprocess"].get<std::string>();
  }
  zoo::ModelSpec spec;
  if (m.contains("image_size"))
    spec.image_size = static_cast<int>(positive_number(m, "image_size", where));
  if (m.contains("resize_mode") && m["resize_mode"].is_string()) {
    spec.resize_mode = m["resize_mode"].get<std::string>();
  }
  if (m.contains("interpolation") && m["interpolation"].is_string()) {
    spec.interpolation = m["interpolation"].get<std::string>();
  }
  const auto triple = [&](const char* field, std::array<float, 3>& out) {
    if (!m.contains(field)) return;
    if (!m[field].is_array() || m[field].size() != 3) {
      MLL_THROW(DataError, where, ": field '", field, "' must be an array of 3 numbers");
    }
    for (std::size_t c = 0; c < 3; ++c) out[c] = m[field][c].get<float>();
  };
  triple("mean", spec.mean);
  triple("std", spec.stddev);
  return preprocess_group_key(spec);
}

}  // namespace

std::vector<MakespanModel> load_zoo_description(const std::string& path, const std::string& cost) {
  if (cost != "image" && cost != "pair") {
    MLL_THROW(UsageError, "--cost must be image or pair, not '", cost, "'");
  }
  const std::string text = fs::read_file(path);
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    MLL_THROW(DataError, path, ": not valid JSON: ", e.what());
  }
  if (!doc.is_object() || !doc.contains("models") || !doc["models"].is_array()) {
    MLL_THROW(DataError, path, ": expected an object with a 'models' array");
  }
  std::vector<MakespanModel> models;
  std::set<std::string> seen;
  const char* cost_field = cost == "image" ? "gflops_per_image" : "gflops_pair";
  for (std::size_t i = 0; i < doc["models"].size(); ++i) {
    const json& m = doc["models"][i];
    std::string where = path + ": models[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("id") || !m["id"].is_string() ||
        m["id"].get<std::string>().empty()) {
      MLL_THROW(DataError, where, ": field 'id' must be a non-empty string");
    }
    MakespanModel model;
    model.id = m["id"].get<std::string>();
    where += " ('" + model.id + "')";
    if (!seen.insert(model.id).second) MLL_THROW(DataError, where, ": duplicate id");
    model.params = static_cast<std::int64_t>(positive_number(m, "params", where));
    model.gflops_per_image = positive_number(m, cost_field, where);
    model.group_key = description_key(m, where);
    if (m.contains("image_size")) {
      model.image_size = static_cast<int>(positive_number(m, "image_size", where));
    }
    models.push_back(std::move(model));
  }
  if (models.empty()) MLL_THROW(DataError, path, ": the description lists no models");
  return models;
}

namespace {

// Bytes of one activation value: fp16, as the weights.
constexpr double kActivationBytes = 2.0;

// Seconds to run `rows` images through work of `gflops` per image, and the part of it spent
// waiting for decoding (rows are decoded once per group or model and overlap with compute; a
// sub-group that reads cached crops does not decode).
struct RunTime {
  double compute_s = 0.0;
  double stall_s = 0.0;
  double total() const { return compute_s + stall_s; }
};

RunTime run_time(double rows, double gflops, const MakespanOptions& o, bool decodes = true) {
  RunTime t;
  t.compute_s = rows * gflops / (o.gpu_tflops * 1e3);
  if (decodes && o.decode_cores_per_gpu > 0.0) {
    const double decode_s = rows / (o.decode_cores_per_gpu * o.decode_images_per_core);
    t.stall_s = std::max(0.0, decode_s - t.compute_s);
  }
  return t;
}

double load_time(double params, const MakespanOptions& o) {
  return params * o.bytes_per_param / (o.load_gbps * 1e9);
}

void finish(StrategyResult& r, double total_compute, int gpus) {
  r.makespan_s = r.busy_max_s();
  r.efficiency = r.makespan_s > 0.0 ? total_compute / (gpus * r.makespan_s) : 1.0;
}

// One simulated worker of the dynamic strategy.
struct Worker {
  int loaded = -1;
  int prefetched = -1;          // sub-group loading ahead (-1: none)
  double prefetch_ready = 0.0;  // when that load is done
};

// With prefetch: a worker whose sub-group is about to run out (this shard plus the holders'
// remaining share of it take no longer than the next sub-group's load) starts loading the
// sub-group the scheduler would give it next, when both fit the memory budget together.
void maybe_prefetch(const Scheduler& scheduler, const std::vector<MakespanGroup>& groups,
                    const MakespanOptions& o, double start, double shard_s, Worker& worker,
                    GpuLoad& gpu) {
  const auto next = scheduler.peek(worker.loaded);
  if (!next) return;
  const MakespanGroup& current = groups[static_cast<std::size_t>(worker.loaded)];
  const MakespanGroup& ahead = groups[static_cast<std::size_t>(*next)];
  if (o.memory > 0 && current.footprint + ahead.footprint > o.memory) return;
  const double left_s =
      shard_s + scheduler.remaining_per_holder(worker.loaded) / (o.gpu_tflops * 1e3);
  if (left_s > ahead.load_s) return;
  worker.prefetched = *next;
  worker.prefetch_ready = start + ahead.load_s;
  gpu.memory = std::max(gpu.memory, current.footprint + ahead.footprint);
}

// The dynamic strategy: an event-driven simulation of `gpus` workers asking schedule::Scheduler for
// shards, exactly as the MPI coordinator hands them out (with each sub-group's load time as its
// switch cost, in the scheduler's unit of work: GFLOPs).
StrategyResult simulate_dynamic(const std::vector<MakespanGroup>& groups, const MakespanOptions& o,
                                double total_compute) {
  const double gflop_per_s = o.gpu_tflops * 1e3;
  std::vector<int> shard_group;
  std::vector<double> shard_work;
  std::vector<double> shard_rows;
  std::vector<double> switch_work;
  for (std::size_t g = 0; g < groups.size(); ++g) {
    const std::int64_t unit = groups[g].unit;
    for (std::int64_t begin = 0; begin < o.images; begin += unit) {
      const double rows = static_cast<double>(std::min(o.images, begin + unit) - begin);
      shard_group.push_back(static_cast<int>(g));
      shard_work.push_back(rows * groups[g].gflops_per_image);
      shard_rows.push_back(rows);
    }
    switch_work.push_back(groups[g].load_s * gflop_per_s);
  }
  Scheduler scheduler(shard_group, shard_work, switch_work);

  StrategyResult r;
  r.name = "dynamic";
  r.gpus.resize(static_cast<std::size_t>(o.gpus));
  std::vector<Worker> workers(static_cast<std::size_t>(o.gpus));
  // Free workers by the time they become free; ties go to the lower worker index, so the
  // simulation is deterministic.
  using Event = std::pair<double, int>;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> free_at;
  for (int w = 0; w < o.gpus; ++w) free_at.push({0.0, w});
  while (!free_at.empty()) {
    const auto [now, w] = free_at.top();
    free_at.pop();
    Worker& worker = workers[static_cast<std::size_t>(w)];
    const auto shard = scheduler.next(worker.loaded, worker.prefetched);
    if (!shard) continue;  // nothing left: this worker is done at `now`
    const int g = shard_group[*shard];
    const MakespanGroup& group = groups[static_cast<std::size_t>(g)];
    GpuLoad& gpu = r.gpus[static_cast<std::size_t>(w)];
    double t = now;
    if (worker.loaded != g) {
      double load = group.load_s;
      if (worker.prefetched == g) {
        load = std::max(0.0, worker.prefetch_ready - now);
        gpu.hidden_load_s += group.load_s - load;
      }
      gpu.load_s += load;
      gpu.loads += 1;
      t += load;
      worker.loaded = g;
      worker.prefetched = -1;
    }
    gpu.memory = std::max(gpu.memory, group.footprint);
    const RunTime run = run_time(shard_rows[*shard], group.gflops_per_image, o, group.part == 0);
    if (o.prefetch && worker.prefetched < 0) {
      maybe_prefetch(scheduler, groups, o, t, run.total(), worker, gpu);
    }
    gpu.compute_s += run.compute_s;
    gpu.decode_stall_s += run.stall_s;
    gpu.units += 1;
    t += run.total();
    gpu.busy_s = t;  // a worker is never idle before its last shard ends
    free_at.push({t, w});
  }
  for (const auto& g : groups) r.largest_unit_s = std::max(r.largest_unit_s, g.load_s + g.shard_s);
  finish(r, total_compute, o.gpus);
  return r;
}

// The baseline: model i on GPU i mod N; each GPU loads and runs its models in turn.
StrategyResult simulate_round_robin(const std::vector<MakespanModel>& models,
                                    const MakespanOptions& o, double total_compute) {
  StrategyResult r;
  r.name = "static-round-robin";
  r.gpus.resize(static_cast<std::size_t>(o.gpus));
  for (std::size_t i = 0; i < models.size(); ++i) {
    GpuLoad& gpu = r.gpus[i % static_cast<std::size_t>(o.gpus)];
    const double load = load_time(static_cast<double>(models[i].params), o);
    const RunTime run = run_time(static_cast<double>(o.images), models[i].gflops_per_image, o);
    gpu.load_s += load;
    gpu.loads += 1;
    gpu.compute_s += run.compute_s;
    gpu.decode_stall_s += run.stall_s;
    gpu.units += 1;
    gpu.busy_s += load + run.total();
    gpu.memory = std::max(gpu.memory,
                          model_memory(models[i].id, models[i].params, o.bytes_per_param, o.batch,
                                       models[i].image_size, models[i].image_size, kActivationBytes)
                              .footprint());
    r.largest_unit_s = std::max(r.largest_unit_s, load + run.total());
  }
  finish(r, total_compute, o.gpus);
  return r;
}

std::string seconds(double s) {
  std::ostringstream out;
  out << std::fixed;
  if (s >= 7200.0) {
    out << std::setprecision(2) << s / 3600.0 << " h";
  } else if (s >= 120.0) {
    out << std::setprecision(1) << s / 60.0 << " min";
  } else {
    out << std::setprecision(1) << s << " s";
  }
  return out.str();
}

std::string percent(double fraction) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << 100.0 * fraction << "%";
  return out.str();
}

// Why the dynamic schedule misses the ideal, biggest effect first.
std::vector<std::string> explain(const MakespanResult& p) {
  const auto& d = p.dynamic;
  const double lost = p.options.gpus * d.makespan_s - p.total_compute_s;  // GPU-seconds
  if (d.makespan_s <= 0.0 || lost <= 1e-9 * p.total_compute_s) return {};
  std::vector<std::pair<double, std::string>> effects;
  const double load = d.total_load_s();
  const double stall = d.total_decode_stall_s();
  const double idle = std::max(0.0, lost - load - stall);
  const auto share = [&](double gpu_s) { return percent(gpu_s / (p.options.gpus * d.makespan_s)); };
  if (load > 0.0) {
    std::size_t loads = 0;
    for (const auto& g : d.gpus) loads += static_cast<std::size_t>(g.loads);
    const double hidden = d.total_hidden_load_s();
    effects.push_back(
        {load,
         "model load time: " + share(load) + " of GPU time (" + std::to_string(loads) +
             " sub-group loads at " + cat(p.options.load_gbps) + " GB/s" +
             (hidden > 0.0 ? "; " + seconds(hidden) + " more hidden by prefetch" : std::string()) +
             ")"});
  }
  if (stall > 0.0) {
    std::string which;
    for (const auto& g : p.groups) {
      if (g.decode_limited) which += (which.empty() ? "" : ", ") + g.key;
    }
    effects.push_back({stall, "decode: " + share(stall) + " of GPU time waiting for images (" +
                                  cat(p.options.decode_cores_per_gpu) +
                                  " cores/GPU; decode-bound groups: " + which + ")"});
  }
  if (idle > 0.0) {
    std::string why;
    if (d.largest_unit_s >= 0.5 * d.makespan_s) {
      const MakespanGroup* big = &p.groups.front();
      for (const auto& g : p.groups) {
        if (g.load_s + g.shard_s > big->load_s + big->shard_s) big = &g;
      }
      why = "shard granularity: one shard of group '" + big->key + "' takes " +
            seconds(big->shard_s) + " (+" + seconds(big->load_s) + " load) against an ideal of " +
            seconds(p.ideal_s) + "; " + std::to_string(big->shards) + " shards of " +
            std::to_string(big->unit) + " images for " + std::to_string(p.options.gpus) +
            " GPUs (a smaller --unit, or --unit auto, helps)";
    } else {
      why = "tail: GPUs idle while the last shards finish";
    }
    effects.push_back({idle, "idle GPUs: " + share(idle) + " of GPU time; " + why});
  }
  std::stable_sort(effects.begin(), effects.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> lines;
  for (auto& e : effects) lines.push_back(std::move(e.second));
  return lines;
}

RuleOptions rule_options(const MakespanOptions& o) {
  RuleOptions r;
  r.gpu_tflops = o.gpu_tflops;
  r.load_gbps = o.load_gbps;
  r.bytes_per_param = o.bytes_per_param;
  r.memory = o.memory;
  r.batch = o.batch;
  r.bytes_per_value = kActivationBytes;
  r.fixed_unit = o.unit;
  return r;
}

}  // namespace

MakespanResult simulate(const std::vector<MakespanModel>& models, const MakespanOptions& options) {
  const MakespanOptions& o = options;
  if (o.gpus < 1) MLL_THROW(UsageError, "--gpus must be at least 1");
  if (o.images < 1) MLL_THROW(UsageError, "--images must be at least 1");
  if (o.unit < 0) MLL_THROW(UsageError, "--unit must be auto or at least 1");
  if (o.memory < 0) MLL_THROW(UsageError, "--memory must be 0 (no limit) or positive");
  if (o.batch < 1) MLL_THROW(UsageError, "the batch must be at least 1");
  if (!(o.gpu_tflops > 0.0)) MLL_THROW(UsageError, "--gpu-tflops must be positive");
  if (!(o.load_gbps > 0.0)) MLL_THROW(UsageError, "--load-gbps must be positive");
  if (!(o.bytes_per_param > 0.0)) MLL_THROW(UsageError, "bytes per parameter must be positive");
  if (o.decode_cores_per_gpu < 0.0 || !(o.decode_images_per_core > 0.0)) {
    MLL_THROW(UsageError, "--decode-cores-per-gpu must be >= 0 and the decode rate positive");
  }
  if (models.empty()) MLL_THROW(UsageError, "no models to plan");

  MakespanResult p;
  p.options = o;
  p.models = models.size();
  std::set<std::string> keys;
  for (const auto& m : models) {
    MLL_CHECK(m.gflops_per_image > 0.0 && m.params > 0, "planner model without costs");
    keys.insert(m.group_key);
    p.total_compute_s += static_cast<double>(o.images) * m.gflops_per_image / (o.gpu_tflops * 1e3);
  }
  p.preprocess_groups = keys.size();
  const WorkRule rule = work_rule(models, o.gpus, o.images, rule_options(o));
  p.load_cap = rule.load_cap;
  p.subgroup_cap = rule.cap;
  for (const auto& sub : rule.subgroups) {
    MakespanGroup g;
    g.key = sub.key;
    g.part = sub.part;
    for (const std::size_t i : sub.models) g.models.push_back(models[i].id);
    g.gflops_per_image = sub.gflops_per_image;
    g.bytes = static_cast<double>(sub.weights);
    g.footprint = sub.footprint;
    g.load_s = g.bytes / (o.load_gbps * 1e9);
    g.unit = sub.unit;
    g.shards = (o.images + g.unit - 1) / g.unit;
    const RunTime shard = run_time(static_cast<double>(std::min(g.unit, o.images)),
                                   g.gflops_per_image, o, g.part == 0);
    g.shard_s = shard.total();
    g.decode_limited = shard.stall_s > 0.0;
    p.groups.push_back(std::move(g));
  }
  p.ideal_s = p.total_compute_s / o.gpus;
  p.dynamic = simulate_dynamic(p.groups, o, p.total_compute_s);
  p.round_robin = simulate_round_robin(models, o, p.total_compute_s);
  p.limits = explain(p);
  return p;
}

namespace {

// How the work was cut: the unit and sub-group rule, and the memory they imply.
void report_rule(std::ostringstream& out, const MakespanResult& p) {
  const MakespanOptions& o = p.options;
  std::int64_t unit_min = p.groups.front().unit, unit_max = unit_min;
  for (const auto& g : p.groups) {
    unit_min = std::min(unit_min, g.unit);
    unit_max = std::max(unit_max, g.unit);
  }
  out << "work rule: ";
  if (o.unit == 0) {
    out << "unit auto (a shard <= " << percent(kShardFraction) << " of the ideal makespan): ";
  } else {
    out << "unit fixed: ";
  }
  out << unit_min;
  if (unit_max != unit_min) out << "-" << unit_max;
  out << " images per shard; sub-groups up to "
      << (p.subgroup_cap > 0 ? format_bytes(p.subgroup_cap) : std::string("any size"))
      << " (memory "
      << (o.memory > 0 ? format_bytes(o.memory) + " per GPU" : std::string("unlimited"));
  if (p.load_cap > 0) {
    out << ", load cap " << format_bytes(p.load_cap) << " = " << percent(kLoadFraction)
        << " of the ideal makespan at " << o.load_gbps << " GB/s";
  }
  out << "); prefetch " << (o.prefetch ? "on" : "off") << "\n";
}

// "224 shortest ... [2/5]" for a split group, the key alone otherwise.
std::string group_label(const MakespanResult& p, const MakespanGroup& g) {
  int parts = 0;
  for (const auto& other : p.groups) parts += other.key == g.key ? 1 : 0;
  if (parts == 1) return g.key.substr(0, 47);
  const std::string tag = " [" + std::to_string(g.part + 1) + "/" + std::to_string(parts) + "]";
  return g.key.substr(0, 47 - std::min<std::size_t>(47, tag.size())) + tag;
}

}  // namespace

std::string makespan_report(const MakespanResult& p) {
  const MakespanOptions& o = p.options;
  std::ostringstream out;
  out << p.models << " models in " << p.preprocess_groups << " preprocessing groups ("
      << p.groups.size() << " sub-groups), " << o.images << " images, " << o.gpus << " GPUs at "
      << o.gpu_tflops << " TFLOP/s, load " << o.load_gbps << " GB/s, decode "
      << (o.decode_cores_per_gpu > 0.0
              ? cat(o.decode_cores_per_gpu, " cores/GPU x ", o.decode_images_per_core, " img/s")
              : std::string("unlimited"))
      << "\n";
  report_rule(out, p);
  out << "compute work " << seconds(p.total_compute_s) << " GPU time; ideal makespan "
      << seconds(p.ideal_s) << "\n\n";
  const auto row = [&](const std::string& label, const std::string& a, const std::string& b) {
    out << std::left << std::setw(26) << label << std::right << std::setw(16) << a << std::setw(22)
        << b << "\n";
  };
  const auto& d = p.dynamic;
  const auto& s = p.round_robin;
  row("", "dynamic", "static round-robin");
  row("makespan", seconds(d.makespan_s), seconds(s.makespan_s));
  row("parallel efficiency", cat(std::fixed, std::setprecision(3), d.efficiency),
      cat(std::fixed, std::setprecision(3), s.efficiency));
  row("GPU busy: least busy", seconds(d.busy_min_s()), seconds(s.busy_min_s()));
  row("GPU busy: mean", seconds(d.busy_mean_s()), seconds(s.busy_mean_s()));
  row("GPU busy: busiest", seconds(d.busy_max_s()), seconds(s.busy_max_s()));
  row("load time (all GPUs)", seconds(d.total_load_s()), seconds(s.total_load_s()));
  if (o.prefetch) row("load hidden by prefetch", seconds(d.total_hidden_load_s()), "-");
  row("decode stalls (all GPUs)", seconds(d.total_decode_stall_s()),
      seconds(s.total_decode_stall_s()));
  row("largest indivisible unit", seconds(d.largest_unit_s), seconds(s.largest_unit_s));
  row("memory per GPU (most)", format_bytes(d.memory_max()), format_bytes(s.memory_max()));
  out << "\nsub-groups (most expensive first; part 1 of a group decodes, the others read its "
         "crops):\n";
  for (const auto& g : p.groups) {
    out << "  " << std::left << std::setw(48) << group_label(p, g) << std::right << std::setw(4)
        << g.models.size() << " models " << std::setw(9) << std::fixed << std::setprecision(1)
        << g.gflops_per_image << " GFLOPs/img " << std::setw(9) << format_bytes(g.footprint)
        << "  unit " << std::setw(4) << g.unit << "  shard " << seconds(g.shard_s)
        << (g.decode_limited ? " (decode-bound)" : "") << "\n";
  }
  out << std::defaultfloat;
  if (!p.limits.empty()) {
    out << "\nwhat keeps dynamic from the ideal:\n";
    for (const auto& line : p.limits) out << "  - " << line << "\n";
  }
  return out.str();
}

std::string makespan_json(const MakespanResult& p) {
  const auto strategy = [](const StrategyResult& r) {
    json busy = json::array();
    for (const auto& g : r.gpus) busy.push_back(g.busy_s);
    int loads = 0;
    for (const auto& g : r.gpus) loads += g.loads;
    return json{{"name", r.name},
                {"makespan_s", r.makespan_s},
                {"efficiency", r.efficiency},
                {"largest_unit_s", r.largest_unit_s},
                {"load_s", r.total_load_s()},
                {"loads", loads},
                {"hidden_load_s", r.total_hidden_load_s()},
                {"memory_max", r.memory_max()},
                {"decode_stall_s", r.total_decode_stall_s()},
                {"busy_min_s", r.busy_min_s()},
                {"busy_mean_s", r.busy_mean_s()},
                {"busy_max_s", r.busy_max_s()},
                {"busy_s", busy}};
  };
  json groups = json::array();
  for (const auto& g : p.groups) {
    groups.push_back({{"key", g.key},
                      {"part", g.part},
                      {"models", g.models},
                      {"gflops_per_image", g.gflops_per_image},
                      {"bytes", g.bytes},
                      {"footprint", g.footprint},
                      {"unit", g.unit},
                      {"load_s", g.load_s},
                      {"shards", g.shards},
                      {"shard_s", g.shard_s},
                      {"decode_limited", g.decode_limited}});
  }
  const MakespanOptions& o = p.options;
  json doc{{"options",
            {{"gpus", o.gpus},
             {"images", o.images},
             {"unit", o.unit},
             {"unit_rule", o.unit == 0 ? "auto" : "fixed"},
             {"memory", o.memory},
             {"prefetch", o.prefetch},
             {"batch", o.batch},
             {"gpu_tflops", o.gpu_tflops},
             {"load_gbps", o.load_gbps},
             {"bytes_per_param", o.bytes_per_param},
             {"decode_cores_per_gpu", o.decode_cores_per_gpu},
             {"decode_images_per_core", o.decode_images_per_core}}},
           {"models", p.models},
           {"preprocess_groups", p.preprocess_groups},
           {"load_cap", p.load_cap},
           {"subgroup_cap", p.subgroup_cap},
           {"memory_per_gpu", p.dynamic.memory_max()},
           {"total_compute_s", p.total_compute_s},
           {"ideal_s", p.ideal_s},
           {"groups", groups},
           {"dynamic", strategy(p.dynamic)},
           {"static_round_robin", strategy(p.round_robin)},
           {"limits", p.limits}};
  return doc.dump(1) + "\n";
}

}  // namespace mll::schedule
