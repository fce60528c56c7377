// How much device memory labeling a group of models needs, and how a group is cut into
// sub-groups that fit a budget (docs/labeling.md "Memory"). Shared by labeling (label::plan_work)
// and `mll plan`, so that the planner models the rule the real run applies. Pure logic: nothing
// here is collective or touches a device.
//
// The estimate of one model is its weights (parameters x bytes per parameter in the run's
// precision) plus a working set for one batch of images (kActivationFactor x the batch's input
// tensor). The models of a group run one after another on each batch, so a sub-group needs the
// sum of its weights but only the largest working set. What a process needs besides the models
// (its libraries, decoded batches) is not part of the budget.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mll::schedule {

// Working set of a forward pass relative to its input tensor (batch x 3 x H x W values): a
// generous round figure for ViT-style towers, whose largest live activations (attention and MLP
// of one block) are a few times the token tensor (docs/labeling.md "Memory").
inline constexpr double kActivationFactor = 24.0;

struct ModelMemory {
  std::string id;
  std::int64_t weights = 0;  // bytes of parameters on the device
  std::int64_t working = 0;  // bytes of activations for one batch
  std::int64_t footprint() const noexcept { return weights + working; }
};

// The estimate for one model: `params` parameters at `bytes_per_param`, and batches of `batch`
// images of `height` x `width` in values of `bytes_per_value`. Negative or zero sizes count as 0.
// Does not throw.
ModelMemory model_memory(std::string id, std::int64_t params, double bytes_per_param, int batch,
                         int height, int width, double bytes_per_value);

// The memory a set of models needs when loaded together: the sum of their weights plus the
// largest working set. Does not throw.
std::int64_t group_footprint(const std::vector<ModelMemory>& models);

// Cuts one group (models in zoo order) into sub-groups whose footprint is at most `budget`
// bytes: first fit, largest weights first, so that the sub-groups are few. Each sub-group lists
// indices into `models` in ascending order; sub-groups are ordered by their first index. With
// budget <= 0 (no limit) or a group that fits, the result is one sub-group of every model.
// Throws UsageError naming the model, its estimate and the budget when one model alone does not
// fit.
std::vector<std::vector<std::size_t>> split_group(const std::vector<ModelMemory>& models,
                                                  std::int64_t budget);

// "37.8 GB"-style text of a byte count (decimal units, 3 significant digits). Does not throw.
std::string format_bytes(std::int64_t bytes);

// Parses a memory size: a number with an optional unit (B, KB, MB, GB, TB: powers of 1000;
// KiB, MiB, GiB, TiB: powers of 1024; a bare number is bytes), e.g. "4GiB", "24 GB", "0" (no
// limit). Throws UsageError naming `text` when it is not one.
std::int64_t parse_bytes(const std::string& text);

}  // namespace mll::schedule
