// The work scheduler shared by distributed labeling and `mll plan`: which shard a free worker
// takes next. Pure logic (no MPI): the coordinator rank runs it for real workers, the planner
// runs it in a simulation with costs from the sidecars. Not thread-safe; not collective.
//
// Policy (design.md "Distribution"): a worker keeps its loaded group while that group has shards
// left (loading a model costs time, and a group's decoded images are shared by its models).
// A worker that has to switch (or has nothing loaded) joins the group that, even with its help,
// would finish last. For group g with h holders: the work they face is what is not handed out,
// the switch costs (the group's load, in units of work) owed by holders that joined and have not
// come back for a second shard, and about one shard each in flight; the score is (faced + the
// newcomer's switch) / (h + 1) + the next shard (a long shard must start early: it may end after
// the others, as in longest-processing-time scheduling). A group is skipped when the newcomer
// could not finish a shard before the holders finish it anyway (switch + next shard >= faced /
// h); when every group is like that, the worker takes the group it can finish a shard of
// soonest. Without switch costs this is "longest first" spread over the workers: the expensive
// groups start early, get workers in proportion to their work, and never end up alone on one
// worker at the end.
//
// Holders are counted from the calls: next(loaded) that returns a shard of another group (or
// nothing) moves one worker off `loaded`. A caller that asks again for the same worker without
// taking the shard (the coordinator skipping a shard whose models all failed) makes the count an
// estimate; it only steers the choice, every shard is still handed out exactly once.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

namespace mll::schedule {

class Scheduler {
 public:
  // `shard_group[i]` is the group of shard i, `shard_work[i]` its cost (any unit). Shards of a
  // group are handed out in index order. No switch costs.
  Scheduler(std::vector<int> shard_group, std::vector<double> shard_work);

  // The same with `switch_work[g]`: what a worker loses switching to group g (its load time), in
  // the unit of `shard_work`; groups beyond the vector cost nothing. Negative figures count as 0.
  Scheduler(std::vector<int> shard_group, std::vector<double> shard_work,
            std::vector<double> switch_work);

  // The next shard for a worker whose loaded group is `loaded_group` (-1: none), or nothing
  // when every shard has been handed out.
  std::optional<std::size_t> next(int loaded_group);

  // The same for a worker that has also loaded (or is loading) `prefetched_group` ahead: it keeps
  // `loaded_group` while that has shards, then takes `prefetched_group`'s while they last, and
  // only then follows the policy.
  std::optional<std::size_t> next(int loaded_group, int prefetched_group);

  // The group a worker leaving `loaded_group` would be given now (the policy's choice among the
  // other groups with shards left), without handing anything out: what a worker about to finish
  // its group should prefetch. Nothing when no other group has shards left.
  std::optional<int> peek(int loaded_group) const;

  // The holders' remaining work per holder on `group` (work not handed out plus switches not
  // yet done, over its holders); 0 for a group without holders or shards. With the work a shard
  // takes, a worker judges whether its group will run out before a prefetch could finish.
  double remaining_per_holder(int group) const;

  // Drops the remaining shards of `group` (all its models failed). Returns how many.
  std::size_t drop_group(int group);

  std::size_t remaining() const noexcept { return remaining_; }

 private:
  bool has_shards(std::size_t group) const;
  std::size_t choose(std::size_t exclude) const;
  std::size_t take(std::size_t group);
  void leave(int group);
  void join(std::size_t group);

  std::vector<int> shard_group_;
  std::vector<double> shard_work_;
  std::vector<std::vector<std::size_t>> queues_;  // per group, shards not yet handed out
  std::vector<std::size_t> head_;                 // per group, next position in its queue
  std::vector<double> group_left_;                // per group, work not yet handed out
  std::vector<double> switch_work_;               // per group, a worker's cost of joining it
  std::vector<int> holders_;                      // per group, workers on it (estimated)
  std::vector<int> pending_;                      // per group, holders that still owe a switch
  std::size_t remaining_ = 0;
};

}  // namespace mll::schedule
