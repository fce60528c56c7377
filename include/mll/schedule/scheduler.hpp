// The work scheduler shared by distributed labeling and `mll plan`: which shard a free worker
// takes next. Pure logic (no MPI): the coordinator rank runs it for real workers, the planner
// runs it in a simulation with costs from the sidecars. Not thread-safe; not collective.
//
// Policy (design.md "Distribution"): a worker keeps its loaded group while that group has shards
// left (loading a model costs time, and a group's decoded images are shared by its models);
// otherwise it takes the group with the most remaining work ("longest first"), so the expensive
// groups start early and never end up alone on one worker at the end.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

namespace mll::schedule {

class Scheduler {
 public:
  // `shard_group[i]` is the group of shard i, `shard_work[i]` its cost (any unit). Shards of a
  // group are handed out in index order.
  Scheduler(std::vector<int> shard_group, std::vector<double> shard_work);

  // The next shard for a worker whose loaded group is `loaded_group` (-1: none), or nothing
  // when every shard has been handed out.
  std::optional<std::size_t> next(int loaded_group);

  // Drops the remaining shards of `group` (all its models failed). Returns how many.
  std::size_t drop_group(int group);

  std::size_t remaining() const noexcept { return remaining_; }

 private:
  std::vector<int> shard_group_;
  std::vector<double> shard_work_;
  std::vector<std::vector<std::size_t>> queues_;  // per group, shards not yet handed out
  std::vector<std::size_t> head_;                 // per group, next position in its queue
  std::vector<double> group_left_;                // per group, work not yet handed out
  std::size_t remaining_ = 0;
};

}  // namespace mll::schedule
