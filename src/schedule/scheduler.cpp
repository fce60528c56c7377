#include "mll/schedule/scheduler.hpp"

#include <algorithm>

#include "mll/core/error.hpp"

namespace mll::schedule {

namespace {
constexpr std::size_t kNone = static_cast<std::size_t>(-1);
}  // namespace

Scheduler::Scheduler(std::vector<int> shard_group, std::vector<double> shard_work)
    : Scheduler(std::move(shard_group), std::move(shard_work), {}) {}

Scheduler::Scheduler(std::vector<int> shard_group, std::vector<double> shard_work,
                     std::vector<double> switch_work)
    : shard_group_(std::move(shard_group)), shard_work_(std::move(shard_work)) {
  MLL_CHECK(shard_group_.size() == shard_work_.size(), "one work figure per shard");
  int groups = 0;
  for (int g : shard_group_) {
    MLL_CHECK(g >= 0, "negative group");
    groups = std::max(groups, g + 1);
  }
  const auto n = static_cast<std::size_t>(groups);
  queues_.resize(n);
  head_.assign(n, 0);
  group_left_.assign(n, 0.0);
  switch_work_.assign(n, 0.0);
  for (std::size_t g = 0; g < n && g < switch_work.size(); ++g) {
    switch_work_[g] = std::max(0.0, switch_work[g]);
  }
  holders_.assign(n, 0);
  pending_.assign(n, 0);
  for (std::size_t i = 0; i < shard_group_.size(); ++i) {
    const auto g = static_cast<std::size_t>(shard_group_[i]);
    queues_[g].push_back(i);
    group_left_[g] += shard_work_[i];
  }
  remaining_ = shard_group_.size();
}

bool Scheduler::has_shards(std::size_t group) const {
  return group < queues_.size() && head_[group] < queues_[group].size();
}

// The policy's group for a worker that joins one (kNone when no group other than `exclude` has
// shards). Ties go to the lower group index, so the choice is deterministic.
std::size_t Scheduler::choose(std::size_t exclude) const {
  std::size_t best = kNone, soonest = kNone;
  double best_score = 0.0, soonest_done = 0.0;
  for (std::size_t g = 0; g < queues_.size(); ++g) {
    if (g == exclude || !has_shards(g)) continue;
    const double cost = switch_work_[g];
    const double holders = holders_[g];
    const double next_shard = shard_work_[queues_[g][head_[g]]];
    // Work the holders still face: what is not handed out, the switches they owe, and about one
    // shard each in flight (the group's mean shard).
    const double shards_left = static_cast<double>(queues_[g].size() - head_[g]);
    const double faced =
        group_left_[g] + pending_[g] * cost + holders * group_left_[g] / shards_left;
    // When the group would finish with this worker too, counting a last shard that may end
    // after the others: the group that would still finish last gets the worker.
    const double score = (faced + cost) / (holders + 1.0) + next_shard;
    const double first_shard = cost + next_shard;
    const bool helps = holders_[g] == 0 || first_shard < faced / holders;
    if (helps && (best == kNone || score > best_score)) {
      best = g;
      best_score = score;
    }
    if (soonest == kNone || first_shard < soonest_done) {
      soonest = g;
      soonest_done = first_shard;
    }
  }
  return best != kNone ? best : soonest;
}

std::size_t Scheduler::take(std::size_t group) {
  const std::size_t shard = queues_[group][head_[group]++];
  group_left_[group] -= shard_work_[shard];
  --remaining_;
  return shard;
}

void Scheduler::leave(int group) {
  if (group < 0 || static_cast<std::size_t>(group) >= holders_.size()) return;
  const auto g = static_cast<std::size_t>(group);
  holders_[g] = std::max(0, holders_[g] - 1);
  pending_[g] = std::min(pending_[g], holders_[g]);
}

void Scheduler::join(std::size_t group) {
  ++holders_[group];
  ++pending_[group];
}

std::optional<std::size_t> Scheduler::next(int loaded_group) { return next(loaded_group, -1); }

std::optional<std::size_t> Scheduler::next(int loaded_group, int prefetched_group) {
  if (loaded_group >= 0 && has_shards(static_cast<std::size_t>(loaded_group))) {
    const auto g = static_cast<std::size_t>(loaded_group);
    // A holder back for another shard has done its switch.
    if (pending_[g] > 0) --pending_[g];
    return take(g);
  }
  leave(loaded_group);
  if (remaining_ == 0) return std::nullopt;
  if (prefetched_group >= 0 && has_shards(static_cast<std::size_t>(prefetched_group))) {
    // Its load overlapped the previous group's shards: nothing owed.
    const auto g = static_cast<std::size_t>(prefetched_group);
    ++holders_[g];
    return take(g);
  }
  const std::size_t group = choose(kNone);
  MLL_CHECK(group != kNone, "remaining shards but no group has any");
  join(group);
  return take(group);
}

std::optional<int> Scheduler::peek(int loaded_group) const {
  const std::size_t exclude = loaded_group >= 0 ? static_cast<std::size_t>(loaded_group) : kNone;
  const std::size_t group = choose(exclude);
  if (group == kNone) return std::nullopt;
  return static_cast<int>(group);
}

double Scheduler::remaining_per_holder(int group) const {
  if (group < 0 || !has_shards(static_cast<std::size_t>(group))) return 0.0;
  const auto g = static_cast<std::size_t>(group);
  if (holders_[g] == 0) return 0.0;
  return (group_left_[g] + pending_[g] * switch_work_[g]) / holders_[g];
}

std::size_t Scheduler::drop_group(int group) {
  if (group < 0 || static_cast<std::size_t>(group) >= queues_.size()) return 0;
  const auto g = static_cast<std::size_t>(group);
  const std::size_t dropped = queues_[g].size() - head_[g];
  head_[g] = queues_[g].size();
  group_left_[g] = 0.0;
  remaining_ -= dropped;
  return dropped;
}

}  // namespace mll::schedule
