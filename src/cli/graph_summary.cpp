#include "graph_summary.hpp"

#include <algorithm>
#include <iomanip>

#include "mll/core/fs.hpp"

namespace mll::cli {

void fs_check_output(const std::string& path, bool force) { fs::check_output_path(path, force); }

void print_graph_summary(std::ostream& out, const graph::Graph& graph, const std::string& path) {
  const auto stats = graph::compute_stats(graph);
  out << "graph " << path << "\n"
      << "  nodes            " << stats.nodes << "\n"
      << "  seeds            " << stats.seeds << " (" << stats.seeds_inner
      << " of them have descendants in the graph)\n"
      << "  edges            " << stats.edges << " (child -> parent)\n"
      << "  leaves           " << stats.leaves << "\n"
      << "  roots            " << stats.roots;
  for (std::int32_t r : graph.roots()) {
    if (stats.roots <= 5) out << " " << graph.node(r).name;
  }
  out << "\n"
      << "  multi-parent     " << stats.multi_parent << " nodes\n"
      << "  caption style    " << graph::to_string(graph.options().caption_style) << "\n"
      << "  content hash     " << graph.content_hash() << "\n"
      << "  depth histogram  (shortest path from a root)\n";
  std::size_t peak = 1;
  for (const auto& [depth, count] : stats.depth_histogram) peak = std::max(peak, count);
  for (const auto& [depth, count] : stats.depth_histogram) {
    out << "    " << std::setw(3) << depth << " " << std::setw(6) << count << " "
        << std::string((count * 40 + peak - 1) / peak, '#') << "\n";
  }
}

void print_node(std::ostream& out, const graph::Graph& graph, std::int32_t index,
                std::size_t max_paths) {
  const auto& node = graph.node(static_cast<std::size_t>(index));
  std::string lemmas;
  for (const auto& l : node.lemmas) lemmas += (lemmas.empty() ? "" : ", ") + l;
  out << node.wnid << "  " << node.name << (node.seed ? "  [seed]" : "") << "\n"
      << "  lemmas       " << lemmas << "\n";
  if (!node.seed_label.empty()) out << "  seed label   " << node.seed_label << "\n";
  out << "  definition   " << node.definition << "\n"
      << "  caption      " << node.caption << "\n"
      << "  parents     ";
  if (graph.parents(index).empty()) out << " (none: a root)";
  for (std::int32_t p : graph.parents(index)) out << " " << graph.node(p).name;
  out << "\n  children     " << graph.children(index).size() << "\n";
  const auto descendants = graph.descendants(index);
  const auto seeds_below = std::count_if(descendants.begin(), descendants.end(), [&](auto d) {
    return graph.node(static_cast<std::size_t>(d)).seed && graph.children(d).empty();
  });
  out << "  descendants  " << descendants.size() << " (" << seeds_below << " seed leaves below)\n"
      << "  depth        " << graph.min_depth()[index] << " (shortest), "
      << graph.max_depth()[index] << " (longest)\n";
  const auto paths = graph.paths_to_root(index, max_paths + 1);
  out << "  paths to the root" << (paths.size() > max_paths ? " (first " : " (")
      << std::min(paths.size(), max_paths) << ")\n";
  for (std::size_t k = 0; k < std::min(paths.size(), max_paths); ++k) {
    out << "    ";
    for (std::size_t j = 0; j < paths[k].size(); ++j) {
      out << (j ? " > " : "") << graph.node(paths[k][j]).name;
    }
    out << "\n";
  }
}

}  // namespace mll::cli
