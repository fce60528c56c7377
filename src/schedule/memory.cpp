#include "mll/schedule/memory.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "mll/core/error.hpp"

namespace mll::schedule {

ModelMemory model_memory(std::string id, std::int64_t params, double bytes_per_param, int batch,
                         int height, int width, double bytes_per_value) {
  ModelMemory m;
  m.id = std::move(id);
  m.weights = static_cast<std::int64_t>(std::llround(
      static_cast<double>(std::max<std::int64_t>(0, params)) * std::max(0.0, bytes_per_param)));
  const double input = static_cast<double>(std::max(0, batch)) * 3.0 * std::max(0, height) *
                       std::max(0, width) * std::max(0.0, bytes_per_value);
  m.working = static_cast<std::int64_t>(std::llround(input * kActivationFactor));
  return m;
}

std::int64_t group_footprint(const std::vector<ModelMemory>& models) {
  std::int64_t weights = 0, working = 0;
  for (const auto& m : models) {
    weights += m.weights;
    working = std::max(working, m.working);
  }
  return weights + working;
}

std::vector<std::vector<std::size_t>> split_group(const std::vector<ModelMemory>& models,
                                                  std::int64_t budget) {
  std::vector<std::size_t> all(models.size());
  std::iota(all.begin(), all.end(), std::size_t{0});
  if (budget <= 0 || group_footprint(models) <= budget) return {all};
  for (const auto& m : models) {
    if (m.footprint() > budget) {
      // Close sizes print alike when rounded: then in bytes.
      const bool close = format_bytes(m.footprint()) == format_bytes(budget);
      const auto text = [&](std::int64_t b) {
        return close ? std::to_string(b) + " bytes" : format_bytes(b);
      };
      MLL_THROW(UsageError, "model '", m.id, "' needs about ", text(m.footprint()), " (weights ",
                format_bytes(m.weights), " + one batch ", format_bytes(m.working),
                ") but the memory budget is ", text(budget), ": raise --memory or lower --batch");
    }
  }
  // First fit decreasing: the largest models open the sub-groups, smaller ones fill the gaps.
  std::vector<std::size_t> order = all;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return models[a].weights > models[b].weights;
  });
  struct Bin {
    std::int64_t weights = 0, working = 0;
    std::vector<std::size_t> members;
  };
  std::vector<Bin> bins;
  for (const std::size_t i : order) {
    const auto& m = models[i];
    auto fits = [&](const Bin& b) {
      return b.weights + m.weights + std::max(b.working, m.working) <= budget;
    };
    auto bin = std::find_if(bins.begin(), bins.end(), fits);
    if (bin == bins.end()) bin = bins.insert(bins.end(), Bin{});
    bin->weights += m.weights;
    bin->working = std::max(bin->working, m.working);
    bin->members.push_back(i);
  }
  std::vector<std::vector<std::size_t>> out;
  for (auto& b : bins) {
    std::sort(b.members.begin(), b.members.end());
    out.push_back(std::move(b.members));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a[0] < b[0]; });
  return out;
}

std::string format_bytes(std::int64_t bytes) {
  static const char* const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (std::fabs(value) >= 1000.0 && unit + 1 < std::size(units)) {
    value /= 1000.0;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof text, "%lld B", static_cast<long long>(bytes));
  } else {
    std::snprintf(text, sizeof text, "%.*f %s",
                  std::fabs(value) >= 100 ? 0 : (std::fabs(value) >= 10 ? 1 : 2), value,
                  units[unit]);
  }
  return text;
}

std::int64_t parse_bytes(const std::string& text) {
  std::size_t pos = 0;
  double value = 0.0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    MLL_THROW(UsageError, "'", text, "' is not a memory size (e.g. 4GiB, 24GB, 0 for no limit)");
  }
  while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) ++pos;
  std::string unit = text.substr(pos);
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const std::pair<const char*, double> units[] = {{"", 1.0},
                                                         {"b", 1.0},
                                                         {"kb", 1e3},
                                                         {"mb", 1e6},
                                                         {"gb", 1e9},
                                                         {"tb", 1e12},
                                                         {"k", 1e3},
                                                         {"m", 1e6},
                                                         {"g", 1e9},
                                                         {"t", 1e12},
                                                         {"kib", 1024.0},
                                                         {"mib", 1048576.0},
                                                         {"gib", 1073741824.0},
                                                         {"tib", 1099511627776.0}};
  for (const auto& [name, scale] : units) {
    if (unit != name || !(value >= 0) || !std::isfinite(value)) continue;
    const double bytes = value * scale;
    // llround is undefined past int64's range; 2^62 bytes (4 EiB) is beyond any machine.
    if (bytes > 4.6e18) MLL_THROW(UsageError, "'", text, "' is too large a memory size");
    // A positive size that rounds to nothing would read as 0, "no limit".
    if (bytes > 0 && bytes < 1) {
      MLL_THROW(UsageError, "'", text, "' is less than one byte (0 means no limit)");
    }
    return static_cast<std::int64_t>(std::llround(bytes));
  }
  MLL_THROW(UsageError, "'", text, "' is not a memory size (e.g. 4GiB, 24GB, 0 for no limit)");
}

}  // namespace mll::schedule
