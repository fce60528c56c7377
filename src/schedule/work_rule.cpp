#include "mll/schedule/work_rule.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "mll/core/error.hpp"
#include "mll/schedule/memory.hpp"

namespace mll::schedule {
namespace {

void check(const std::vector<MakespanModel>& models, int workers, std::int64_t images,
           const RuleOptions& o) {
  if (workers < 1) MLL_THROW(UsageError, "--gpus must be at least 1");
  if (images < 1) MLL_THROW(UsageError, "--images must be at least 1");
  if (!(o.gpu_tflops > 0.0)) MLL_THROW(UsageError, "--gpu-tflops must be positive");
  if (!(o.load_gbps > 0.0)) MLL_THROW(UsageError, "--load-gbps must be positive");
  if (!(o.bytes_per_param > 0.0)) MLL_THROW(UsageError, "bytes per parameter must be positive");
  if (o.memory < 0) MLL_THROW(UsageError, "--memory must be 0 (no limit) or positive");
  if (o.batch < 1 || o.fixed_unit < 0 || o.min_unit < 1 || o.max_unit < o.min_unit ||
      !(o.load_fraction > 0.0) || !(o.shard_fraction > 0.0)) {
    MLL_THROW(UsageError, "the batch, unit bounds and fractions of the work rule must be positive");
  }
  if (models.empty()) MLL_THROW(UsageError, "no models to plan");
}

// The sub-groups of one preprocessing group (`members`: indices into the zoo, ascending) under
// `memory` and `cap` (cap <= memory where both are set): models over the cap alone, the others
// packed by split_group. Ordered by their first model, so that part 0 holds the group's first.
std::vector<std::vector<std::size_t>> split_members(const std::vector<ModelMemory>& all,
                                                    const std::vector<std::size_t>& members,
                                                    std::int64_t memory, std::int64_t cap) {
  std::vector<std::vector<std::size_t>> parts;
  std::vector<std::size_t> packed;
  std::vector<ModelMemory> packed_memory;
  for (const std::size_t i : members) {
    if (cap > 0 && all[i].footprint() > cap) {
      split_group({all[i]}, memory);  // throws when it exceeds the memory budget itself
      parts.push_back({i});
    } else {
      packed.push_back(i);
      packed_memory.push_back(all[i]);
    }
  }
  if (!packed.empty()) {
    for (const auto& part : split_group(packed_memory, cap)) {
      std::vector<std::size_t> indices;
      for (const std::size_t k : part) indices.push_back(packed[k]);
      parts.push_back(std::move(indices));
    }
  }
  std::sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a[0] < b[0]; });
  return parts;
}

// Images per shard of a sub-group costing `gflops` per image: at most `fraction` of the ideal
// makespan, on the batch grid, within the bounds.
std::int64_t cost_unit(double gflops, double all_gflops, std::int64_t images, int workers,
                       const RuleOptions& o) {
  const double limit = o.shard_fraction * all_gflops * static_cast<double>(images) /
                       (static_cast<double>(workers) * gflops);
  const auto on_grid = static_cast<std::int64_t>(std::floor(limit / o.batch)) * o.batch;
  return std::clamp(on_grid, o.min_unit, o.max_unit);
}

// Every unit of a preprocessing group becomes the group's smallest unit times the largest power
// of two that keeps it within its own limit.
void align_units(std::vector<SubGroup>& subgroups) {
  std::map<std::string, std::int64_t> finest;
  for (const auto& s : subgroups) {
    auto [it, inserted] = finest.emplace(s.key, s.unit);
    if (!inserted) it->second = std::min(it->second, s.unit);
  }
  for (auto& s : subgroups) {
    std::int64_t unit = finest[s.key];
    while (unit * 2 <= s.unit) unit *= 2;
    s.unit = unit;
  }
}

}  // namespace

WorkRule work_rule(const std::vector<MakespanModel>& models, int workers, std::int64_t images,
                   const RuleOptions& o) {
  check(models, workers, images, o);
  double all_gflops = 0.0;
  std::vector<ModelMemory> memory;
  std::vector<std::string> keys;  // first appearance order
  std::map<std::string, std::vector<std::size_t>> members;
  for (std::size_t i = 0; i < models.size(); ++i) {
    const auto& m = models[i];
    all_gflops += m.gflops_per_image;
    memory.push_back(model_memory(m.id, m.params, o.bytes_per_param, o.batch, m.image_size,
                                  m.image_size, o.bytes_per_value));
    auto& list = members[m.group_key];
    if (list.empty()) keys.push_back(m.group_key);
    list.push_back(i);
  }
  WorkRule rule;
  rule.ideal_s = all_gflops * static_cast<double>(images) / (o.gpu_tflops * 1e3 * workers);
  if (o.fixed_unit == 0) {
    // At least one byte: a cap that rounds to 0 would read as "none" and drop the memory budget
    // with it; a cap of one byte leaves every model a sub-group of its own.
    rule.load_cap =
        std::max<std::int64_t>(1, std::llround(o.load_fraction * rule.ideal_s * o.load_gbps * 1e9));
    rule.cap = o.memory > 0 ? std::min(o.memory, rule.load_cap) : rule.load_cap;
  } else {
    rule.cap = o.memory;
  }
  for (const auto& key : keys) {
    const auto parts = split_members(memory, members[key], o.memory, rule.cap);
    for (std::size_t p = 0; p < parts.size(); ++p) {
      SubGroup s;
      s.key = key;
      s.part = static_cast<int>(p);
      s.models = parts[p];
      std::vector<ModelMemory> loaded;
      for (const std::size_t i : s.models) {
        s.gflops_per_image += models[i].gflops_per_image;
        s.weights += memory[i].weights;
        loaded.push_back(memory[i]);
      }
      s.footprint = group_footprint(loaded);
      s.unit = o.fixed_unit > 0 ? o.fixed_unit
                                : cost_unit(s.gflops_per_image, all_gflops, images, workers, o);
      rule.subgroups.push_back(std::move(s));
    }
  }
  if (o.fixed_unit == 0) align_units(rule.subgroups);
  std::stable_sort(
      rule.subgroups.begin(), rule.subgroups.end(),
      [](const SubGroup& a, const SubGroup& b) { return a.gflops_per_image > b.gflops_per_image; });
  return rule;
}

}  // namespace mll::schedule
