// report.json, report.html (inline SVG and CSS, no external resources) and the Markdown summary.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "html.hpp"
#include "mll/core/error.hpp"
#include "mll/reuse/reuse.hpp"
#include "mll/select/selection_file.hpp"

namespace mll::reuse {
namespace {

using html::escape;
using html::heat_colour;
using nlohmann::json;

json number(double v) { return std::isnan(v) ? json(nullptr) : json(v); }

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

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

}  // namespace

std::string report_json(const ReuseReport& r) {
  json doc;
  doc["kind"] = "mll-reuse-report";
  doc["task"] = r.task;
  doc["classes"] = r.classes;
  doc["images"] = r.images.size();
  doc["labeled"] = r.labeled;
  doc["models_run"] = r.models_run;
  doc["predict_seconds"] = r.predict_seconds;
  doc["general_accuracy"] = {{"source", r.general_source}, {"values", r.general}};
  doc["warnings"] = r.warnings;
  json classes = json::array();
  for (std::size_t y = 0; y < r.classes.size(); ++y) {
    json c;
    c["name"] = r.classes[y];
    json chosen = json::array();
    for (const auto& ch : r.selection.chosen[y])
      chosen.push_back({{"model", ch.model}, {"score", ch.score}});
    c["chosen"] = chosen;
    json nodes = json::array();
    for (std::size_t j = 0; j < r.selection.node_wnids[y].size(); ++j) {
      nodes.push_back({{"wnid", r.selection.node_wnids[y][j]},
                       {"name", r.selection.node_names[y][j]},
                       {"weight", r.selection.node_weights[y][j]}});
    }
    c["matched_nodes"] = nodes;
    c["warnings"] = r.selection.warnings[y];
    classes.push_back(c);
  }
  doc["per_class"] = classes;
  json methods = json::array();
  for (const auto& m : r.methods) {
    json j;
    j["name"] = m.name;
    j["description"] = m.description;
    j["models"] = m.models;
    if (m.evaluated) {
      j["top1"] = m.top1_mean;
      j["top5"] = number(m.top5_mean);
      j["mean_class_recall"] = m.recall_mean;
      if (m.runs > 1) {
        j["runs"] = m.runs;
        j["top1_std"] = m.top1_std;
        j["top5_std"] = number(m.top5_std);
        j["mean_class_recall_std"] = m.recall_std;
      }
      std::vector<json> recall;
      for (const auto v : m.metrics.class_recall) recall.push_back(number(v));
      j["class_recall"] = recall;
      json confusion = json::array();
      const auto c = static_cast<std::size_t>(m.metrics.classes);
      for (std::size_t a = 0; a < c; ++a) {
        confusion.push_back(std::vector<std::int64_t>(
            m.metrics.confusion.begin() + static_cast<long>(a * c),
            m.metrics.confusion.begin() + static_cast<long>((a + 1) * c)));
      }
      j["confusion"] = confusion;
    }
    methods.push_back(j);
  }
  doc["methods"] = methods;
  doc["heatmap"] = {
      {"models", r.heat_models}, {"nodes", r.heat_nodes}, {"node_top1", r.heat_values}};
  return doc.dump(1) + "\n";
}

std::string report_html(const ReuseReport& r) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    << "<title>mll report: " << escape(r.task) << "</title>\n<style>\n"
    << "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
       "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}"
       "th{background:#eee}.warn{color:#a40}svg text{font-size:11px;font-family:sans-serif}"
       ".bar{fill:#4a7ebb}.bar.mll{fill:#d9622b}\n</style></head><body>\n";
  h << "<h1>Task " << escape(r.task) << "</h1>\n<p id=\"summary\">" << r.classes.size()
    << " classes, " << r.images.size() << " images" << (r.labeled ? " (labeled)" : " (unlabeled)")
    << "; models run: " << escape(join(r.models_run, ", ")) << "</p>\n";
  for (const auto& w : r.warnings) h << "<p class=\"warn\">" << escape(w) << "</p>\n";

  // Accuracy of every method: a horizontal bar chart.
  h << "<h2>Accuracy</h2>\n";
  if (r.labeled) {
    const int row = 24, left = 110, width = 360;
    h << "<svg id=\"accuracy-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\""
      << left + width + 70 << "\" height=\"" << row * static_cast<int>(r.methods.size()) + 10
      << "\">\n";
    for (std::size_t i = 0; i < r.methods.size(); ++i) {
      const auto& m = r.methods[i];
      const int y = static_cast<int>(i) * row + 5;
      const double w = width * m.top1_mean;
      h << "<text x=\"0\" y=\"" << y + 15 << "\">" << escape(m.name) << "</text>"
        << "<rect class=\"bar" << (m.name == "MLL" ? " mll" : "") << "\" data-method=\""
        << escape(m.name) << "\" x=\"" << left << "\" y=\"" << y << "\" width=\"" << fixed(w, 1)
        << "\" height=\"" << row - 6 << "\"><title>" << escape(m.name) << ": top-1 "
        << pct(m.top1_mean) << "%</title></rect>"
        << "<text x=\"" << left + static_cast<int>(w) + 4 << "\" y=\"" << y + 15 << "\">"
        << pct(m.top1_mean) << "%" << (m.runs > 1 ? " &#177;" + pct(m.top1_std) : "")
        << "</text>\n";
    }
    h << "</svg>\n";
  } else {
    h << "<p>The task is unlabeled: no accuracy.</p>\n";
  }
  h << "<table id=\"methods\"><tr><th>method</th><th>top-1 %</th><th>top-5 %</th>"
       "<th>mean class recall %</th><th>what</th></tr>\n";
  for (const auto& m : r.methods) {
    const std::string spread = m.runs > 1 ? " &#177; " : "";
    h << "<tr><td>" << escape(m.name) << "</td><td>" << pct(m.top1_mean)
      << (m.runs > 1 ? spread + pct(m.top1_std) : "") << "</td><td>" << pct(m.top5_mean)
      << "</td><td>" << pct(m.recall_mean) << "</td><td>" << escape(m.description)
      << "</td></tr>\n";
  }
  h << "</table>\n";

  // Per class: chosen models and matched nodes.
  h << "<h2>Chosen models and matched nodes</h2>\n<table id=\"chosen\"><tr><th>class</th>"
       "<th>chosen models (score)</th><th>matched nodes (weight)</th></tr>\n";
  for (std::size_t y = 0; y < r.classes.size(); ++y) {
    std::vector<std::string> models, nodes;
    for (const auto& c : r.selection.chosen[y])
      models.push_back(escape(c.model) + " (" + fixed(c.score, 3) + ")");
    for (std::size_t j = 0; j < r.selection.node_wnids[y].size(); ++j) {
      nodes.push_back(escape(r.selection.node_names[y][j]) + " (" +
                      fixed(r.selection.node_weights[y][j], 3) + ")");
    }
    h << "<tr class=\"class-row\"><td>" << escape(r.classes[y]) << "</td><td>"
      << join(models, "<br>") << "</td><td>" << join(nodes, "<br>");
    for (const auto& w : r.selection.warnings[y])
      h << "<div class=\"warn\">" << escape(w) << "</div>";
    h << "</td></tr>\n";
  }
  h << "</table>\n";

  // Heatmap of node_top1: candidates x task nodes.
  h << "<h2>Model labels over the task's nodes (node top-1)</h2>\n";
  const int cell = 22, left = 150, top = 140;
  const int cols = static_cast<int>(r.heat_nodes.size()),
            rows = static_cast<int>(r.heat_models.size());
  h << "<svg id=\"heatmap\" xmlns=\"http://www.w3.org/2000/svg\" width=\""
    << left + cell * cols + 10 << "\" height=\"" << top + cell * rows + 10 << "\">\n";
  for (int c = 0; c < cols; ++c) {
    const int x = left + c * cell + cell / 2;
    h << "<text transform=\"translate(" << x << "," << top - 4 << ") rotate(-60)\">"
      << escape(r.heat_nodes[static_cast<std::size_t>(c)]) << "</text>\n";
  }
  for (int m = 0; m < rows; ++m) {
    h << "<text x=\"0\" y=\"" << top + m * cell + 15 << "\">"
      << escape(r.heat_models[static_cast<std::size_t>(m)]) << "</text>\n";
    for (int c = 0; c < cols; ++c) {
      const double v = r.heat_values[static_cast<std::size_t>(m * cols + c)];
      h << "<rect class=\"cell\" x=\"" << left + c * cell << "\" y=\"" << top + m * cell
        << "\" width=\"" << cell - 1 << "\" height=\"" << cell - 1 << "\" fill=\"" << heat_colour(v)
        << "\"><title>" << escape(r.heat_models[static_cast<std::size_t>(m)]) << " / "
        << escape(r.heat_nodes[static_cast<std::size_t>(c)]) << ": " << fixed(v, 3)
        << "</title></rect>\n";
    }
  }
  h << "</svg>\n</body></html>\n";
  return h.str();
}

std::string markdown_summary(const ReuseReport& r) {
  std::ostringstream md;
  md << "## mll: task " << r.task << " (" << r.classes.size() << " classes, " << r.images.size()
     << " images)\n\n";
  md << "| class | chosen models | matched nodes |\n| --- | --- | --- |\n";
  for (std::size_t y = 0; y < r.classes.size(); ++y) {
    std::vector<std::string> models, nodes;
    for (const auto& c : r.selection.chosen[y])
      models.push_back(c.model + " (" + fixed(c.score, 3) + ")");
    for (std::size_t j = 0; j < r.selection.node_wnids[y].size(); ++j) {
      nodes.push_back(r.selection.node_names[y][j] + " " +
                      fixed(r.selection.node_weights[y][j], 2));
    }
    md << "| " << r.classes[y] << (r.selection.warnings[y].empty() ? "" : " (!)") << " | "
       << join(models, ", ") << " | " << join(nodes, ", ") << " |\n";
  }
  if (r.labeled) {
    md << "\n| method | top-1 % | top-5 % | mean class recall % |\n| --- | ---: | ---: | ---: |\n";
    for (const auto& m : r.methods) {
      md << "| " << m.name << " | " << pct(m.top1_mean)
         << (m.runs > 1 ? " ± " + pct(m.top1_std) : "") << " | " << pct(m.top5_mean) << " | "
         << pct(m.recall_mean) << " |\n";
    }
  }
  for (std::size_t y = 0; y < r.classes.size(); ++y) {
    for (const auto& w : r.selection.warnings[y]) md << "\nwarning: " << w << "\n";
  }
  for (const auto& w : r.warnings) md << "\nwarning: " << w << "\n";
  return md.str();
}

void write_report(const ReuseReport& r, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) MLL_THROW(IoError, dir, ": cannot create the output folder: ", ec.message());
  select::write_text_atomic(dir + "/report.json", report_json(r));
  select::write_text_atomic(dir + "/report.html", report_html(r));
  std::ostringstream csv;
  csv << "image,predicted" << (r.labeled ? ",class" : "") << "\n";
  const auto& mll = r.methods.front();
  for (std::size_t i = 0; i < r.images.size(); ++i) {
    csv << '"' << r.images[i] << "\"," << r.classes[static_cast<std::size_t>(mll.predicted[i])];
    if (r.labeled) csv << ',' << r.classes[static_cast<std::size_t>(r.labels[i])];
    csv << "\n";
  }
  select::write_text_atomic(dir + "/predictions.csv", csv.str());
}

}  // namespace mll::reuse
