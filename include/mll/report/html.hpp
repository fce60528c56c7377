// Pieces of mll's self-contained HTML pages (the task report, the zoo overview, the model card):
// escaping, number formatting, one stylesheet and a heatmap drawn as inline SVG with its axis
// titles and colour legend. Every page is one file that a browser opens without a network, so
// nothing here refers to an external resource. Pure functions; nothing throws except noted.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mll::report {

// Text made safe for HTML element content and attribute values.
std::string escape(std::string_view text);

// 100 * v with one decimal ("83.3"); "-" for NaN.
std::string pct(double v);
// v with `digits` decimals.
std::string fixed(double v, int digits);

// The colour of a value t in [0, 1] (clamped) on the sequential white-to-blue scale every heatmap
// and its legend share; NaN (no value) is light grey.
std::string heat_colour(double t);
// Black or white, whichever reads on heat_colour(t).
std::string text_colour(double t);

// <!DOCTYPE html> ... <body>, with the shared stylesheet; `title` is escaped.
std::string page_begin(const std::string& title);
std::string page_end();

struct Heatmap {
  std::string id;                       // the <svg> element's id
  std::vector<std::string> rows, cols;  // labels, drawn left and on top (rotated)
  std::vector<double> values;           // rows x cols, row-major, in [lo, hi]; NaN = no value
  std::vector<std::string> cell_text;   // empty, or rows x cols texts drawn inside the cells
  std::string row_axis, col_axis;       // axis titles
  std::string legend;                   // what the colour means
  double lo = 0.0, hi = 1.0;
  bool percent = true;              // legend ticks and tooltips as percentages
  std::string cell_class = "cell";  // class of each cell's <rect>
  int cell = 22;                    // cell side in pixels
};

// The heatmap as an <svg> element: column labels rotated on top, row labels on the left, the
// two axis titles, one <rect class=cell_class> per cell with a <title> tooltip, and a legend
// (<g class="legend">: a gradient bar from lo to hi with ticks). Throws InternalError when
// values (or cell_text) do not hold rows x cols entries.
std::string heatmap_svg(const Heatmap& map);

}  // namespace mll::report
