// Small HTML helpers shared by the reuse module's pages (report.html, summary.html); internal to
// the module.
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>

namespace mll::reuse::html {

inline std::string escape(const std::string& text) {
  std::string out;
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

// A colour from white (0) to dark blue (1).
inline std::string heat_colour(double v) {
  const double t = std::min(1.0, std::max(0.0, v));
  const int r = static_cast<int>(247 - t * (247 - 8));
  const int g = static_cast<int>(251 - t * (251 - 48));
  const int b = static_cast<int>(255 - t * (255 - 107));
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "#%02x%02x%02x", r, g, b);
  return buffer;
}

}  // namespace mll::reuse::html
