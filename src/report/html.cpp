#include "mll/report/html.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "mll/core/error.hpp"

namespace mll::report {
namespace {

// Width of a label in pixels at the 11px sans-serif the stylesheet sets: an estimate, so that
// margins fit the longest label without measuring text (a static page has no layout pass).
int text_width(const std::string& text) { return static_cast<int>(text.size()) * 6 + 4; }

int widest(const std::vector<std::string>& labels) {
  int w = 0;
  for (const auto& l : labels) w = std::max(w, text_width(l));
  return w;
}

std::string value_text(double v, bool percent) {
  if (std::isnan(v)) return "no value";
  return percent ? pct(v) + "%" : fixed(v, 3);
}

}  // namespace

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string pct(double v) {
  if (std::isnan(v)) return "-";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f", 100.0 * v);
  return buffer;
}

std::string fixed(double v, int digits) {
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, v);
  return buffer;
}

std::string heat_colour(double t) {
  if (std::isnan(t)) return "#e4e4e4";
  t = std::min(1.0, std::max(0.0, t));
  const int r = static_cast<int>(247 - t * (247 - 8));
  const int g = static_cast<int>(251 - t * (251 - 48));
  const int b = static_cast<int>(255 - t * (255 - 107));
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "#%02x%02x%02x", r, g, b);
  return buffer;
}

std::string text_colour(double t) { return !std::isnan(t) && t > 0.55 ? "#fff" : "#222"; }

std::string page_begin(const std::string& title) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" << escape(title)
    << "</title>\n<style>\n"
    << "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
       "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
       "td.num{text-align:right}th{background:#eee}.warn{color:#a40}"
       "svg text{font-size:11px;font-family:sans-serif}svg .axis{font-size:12px;"
       "font-weight:bold}.bar{fill:#4a7ebb}.bar.mll{fill:#d9622b}.note{color:#666}"
       ".progress{display:inline-block;width:120px;height:10px;background:#e4e4e4;"
       "vertical-align:middle}.progress span{display:block;height:10px;background:#4a7ebb}\n"
    << "</style></head><body>\n";
  return h.str();
}

std::string page_end() { return "</body></html>\n"; }

std::string heatmap_svg(const Heatmap& map) {
  const auto rows = map.rows.size(), cols = map.cols.size();
  MLL_CHECK(map.values.size() == rows * cols, "heatmap ", map.id, ": ", map.values.size(),
            " values for ", rows, " x ", cols, " cells");
  MLL_CHECK(map.cell_text.empty() || map.cell_text.size() == rows * cols, "heatmap ", map.id,
            ": cell texts do not fit");
  const int cell = map.cell;
  // Column labels are rotated by -60 degrees: their height is about sin(60) of their width.
  const int axis = 18;
  const int left = axis + widest(map.rows) + 6;
  const int top = axis + static_cast<int>(0.87 * widest(map.cols)) + 10;
  const int grid_w = cell * static_cast<int>(cols), grid_h = cell * static_cast<int>(rows);
  const int legend_x = left + grid_w + 30, legend_w = 16;
  const int legend_h = std::max({100, grid_h, text_width(map.legend)});
  // The last column's label leans right by cos(60) of its width.
  const int width = std::max(legend_x + legend_w + 64, left + grid_w + widest(map.cols) / 2 + cell);
  const int height = top + std::max(grid_h, legend_h) + 10;
  std::ostringstream h;
  h << "<svg id=\"" << escape(map.id) << "\" class=\"heatmap\" xmlns=\"http://www.w3.org/2000/svg\""
    << " width=\"" << width << "\" height=\"" << height << "\">\n";
  // The gradient id is per heatmap: several heatmaps share one page.
  const std::string gradient = map.id + "-scale";
  h << "<defs><linearGradient id=\"" << escape(gradient)
    << "\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">";
  for (int s = 0; s <= 4; ++s) {
    h << "<stop offset=\"" << s * 25 << "%\" stop-color=\"" << heat_colour(s / 4.0) << "\"/>";
  }
  h << "</linearGradient></defs>\n";
  h << "<text class=\"axis col-axis\" x=\"" << left + grid_w / 2 << "\" y=\"13\""
    << " text-anchor=\"middle\">" << escape(map.col_axis) << "</text>\n";
  h << "<text class=\"axis row-axis\" transform=\"translate(13," << top + grid_h / 2
    << ") rotate(-90)\" text-anchor=\"middle\">" << escape(map.row_axis) << "</text>\n";
  for (std::size_t c = 0; c < cols; ++c) {
    const int x = left + static_cast<int>(c) * cell + cell / 2 + 4;
    h << "<text class=\"col-label\" transform=\"translate(" << x << "," << top - 4
      << ") rotate(-60)\">" << escape(map.cols[c]) << "</text>\n";
  }
  const double span = map.hi > map.lo ? map.hi - map.lo : 1.0;
  for (std::size_t r = 0; r < rows; ++r) {
    const int y = top + static_cast<int>(r) * cell;
    h << "<text class=\"row-label\" x=\"" << left - 6 << "\" y=\"" << y + cell / 2 + 4
      << "\" text-anchor=\"end\">" << escape(map.rows[r]) << "</text>\n";
    for (std::size_t c = 0; c < cols; ++c) {
      const double v = map.values[r * cols + c];
      const double t = (v - map.lo) / span;
      const int x = left + static_cast<int>(c) * cell;
      h << "<rect class=\"" << map.cell_class << "\" x=\"" << x << "\" y=\"" << y << "\" width=\""
        << cell - 1 << "\" height=\"" << cell - 1 << "\" fill=\"" << heat_colour(t) << "\"><title>"
        << escape(map.rows[r]) << " / " << escape(map.cols[c]) << ": " << value_text(v, map.percent)
        << "</title></rect>";
      if (!map.cell_text.empty() && !map.cell_text[r * cols + c].empty()) {
        h << "<text x=\"" << x + cell / 2 << "\" y=\"" << y + cell / 2 + 4
          << "\" text-anchor=\"middle\" fill=\"" << text_colour(t) << "\">"
          << escape(map.cell_text[r * cols + c]) << "</text>";
      }
      h << "\n";
    }
  }
  h << "<g class=\"legend\"><text class=\"legend-title\" transform=\"translate("
    << legend_x + legend_w + 52 << "," << top + legend_h / 2
    << ") rotate(90)\" text-anchor=\"middle\">" << escape(map.legend) << "</text>"
    << "<rect x=\"" << legend_x << "\" y=\"" << top << "\" width=\"" << legend_w << "\" height=\""
    << legend_h << "\" fill=\"url(#" << escape(gradient) << ")\" stroke=\"#999\"/>";
  for (int s = 0; s <= 4; ++s) {
    const double v = map.lo + span * s / 4.0;
    const int y = top + legend_h - legend_h * s / 4;
    h << "<line x1=\"" << legend_x + legend_w << "\" y1=\"" << y << "\" x2=\""
      << legend_x + legend_w + 4 << "\" y2=\"" << y << "\" stroke=\"#666\"/><text x=\""
      << legend_x + legend_w + 7 << "\" y=\"" << y + 4 << "\">"
      << (map.percent ? pct(v) + "%" : fixed(v, 2)) << "</text>";
  }
  h << "</g>\n</svg>\n";
  return h.str();
}

}  // namespace mll::report
