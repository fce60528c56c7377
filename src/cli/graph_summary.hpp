// Private to the cli module: human-readable views of a graph.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "mll/graph/graph.hpp"

namespace mll::cli {

// Checks an output path before any expensive work (see mll::fs::check_output_path).
void fs_check_output(const std::string& path, bool force);

void print_graph_summary(std::ostream& out, const graph::Graph& graph, const std::string& path);
void print_node(std::ostream& out, const graph::Graph& graph, std::int32_t index,
                std::size_t max_paths);

}  // namespace mll::cli
