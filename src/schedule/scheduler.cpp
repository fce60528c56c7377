#include "mll/schedule/scheduler.hpp"

#include <algorithm>

#include "mll/core/error.hpp"

namespace mll::schedule {

Scheduler::Scheduler(std::vector<int> shard_group, std::vector<double> shard_work)
    : shard_group_(std::move(shard_group)), shard_work_(std::move(shard_work)) {
  MLL_CHECK(shard_group_.size() == shard_work_.size(), "one work figure per shard");
  int groups = 0;
  for (int g : shard_group_) {
    MLL_CHECK(g >= 0, "negative group");
    groups = std::max(groups, g + 1);
  }
  queues_.resize(static_cast<std::size_t>(groups));
  head_.assign(static_cast<std::size_t>(groups), 0);
  group_left_.assign(static_cast<std::size_t>(groups), 0.0);
  for (std::size_t i = 0; i < shard_group_.size(); ++i) {
    const auto g = static_cast<std::size_t>(shard_group_[i]);
    queues_[g].push_back(i);
    group_left_[g] += shard_work_[i];
  }
  remaining_ = shard_group_.size();
}

std::optional<std::size_t> Scheduler::next(int loaded_group) {
  if (remaining_ == 0) return std::nullopt;
  std::size_t group = queues_.size();
  if (loaded_group >= 0 && static_cast<std::size_t>(loaded_group) < queues_.size() &&
      head_[static_cast<std::size_t>(loaded_group)] <
          queues_[static_cast<std::size_t>(loaded_group)].size()) {
    group = static_cast<std::size_t>(loaded_group);
  } else {
    // Longest first; ties go to the lower group index (deterministic).
    double best = -1.0;
    for (std::size_t g = 0; g < queues_.size(); ++g) {
      if (head_[g] < queues_[g].size() && group_left_[g] > best) {
        best = group_left_[g];
        group = g;
      }
    }
  }
  MLL_CHECK(group < queues_.size(), "remaining shards but no group has any");
  const std::size_t shard = queues_[group][head_[group]++];
  group_left_[group] -= shard_work_[shard];
  --remaining_;
  return shard;
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
