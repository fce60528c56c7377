// report.json, report.html (inline SVG and CSS, no external resources), the CSV tables beside them
// (predictions, per-class accuracy, confusion counts) and the Markdown summary.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mll/core/error.hpp"
#include "mll/report/html.hpp"
#include "mll/reuse/reuse.hpp"
#include "mll/select/selection_file.hpp"

namespace mll::reuse {
namespace {

using nlohmann::json;
using report::escape;
using report::fixed;
using report::pct;

json number(double v) { return std::isnan(v) ? json(nullptr) : json(v); }

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

// Top-5 says nothing when a task has at most 5 classes (every image counts), so it is shown,
// and written, only for larger tasks.
bool shows_top5(const ReuseReport& r) { return r.classes.size() > 5; }

// A CSV field, quoted when it holds a separator, a quote or a line break.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (const char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::vector<const MethodResult*> evaluated(const ReuseReport& r) {
  std::vector<const MethodResult*> out;
  for (const auto& m : r.methods) {
    if (m.evaluated) out.push_back(&m);
  }
  return out;
}

// A method's confusion matrix as a heatmap: rows the true classes, columns the predicted ones,
// the colour the share of the true class's images, the count written in each cell.
report::Heatmap confusion_heatmap(const ReuseReport& r, const MethodResult& m, std::size_t index) {
  report::Heatmap map;
  map.id = "confusion-" + std::to_string(index);
  map.rows = r.classes;
  map.cols = r.classes;
  map.row_axis = "true class";
  map.col_axis = "predicted class";
  map.legend = "share of the true class's images";
  map.cell_class = "cm-cell";
  map.cell = r.classes.size() > 20 ? 16 : 26;
  const auto c = r.classes.size();
  for (std::size_t a = 0; a < c; ++a) {
    std::int64_t total = 0;
    for (std::size_t b = 0; b < c; ++b) total += m.metrics.confusion[a * c + b];
    for (std::size_t b = 0; b < c; ++b) {
      const auto n = m.metrics.confusion[a * c + b];
      map.values.push_back(total > 0 ? static_cast<double>(n) / static_cast<double>(total)
                                     : std::numeric_limits<double>::quiet_NaN());
      // Counts only fit cells of a readable size.
      map.cell_text.push_back(map.cell >= 22 && n > 0 ? std::to_string(n) : "");
    }
  }
  return map;
}

std::string accuracy_chart(const ReuseReport& r) {
  std::ostringstream h;
  const int row = 24, left = 110, width = 360, axis = 30;
  const int bars = row * static_cast<int>(r.methods.size());
  h << "<svg id=\"accuracy-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\""
    << left + width + 70 << "\" height=\"" << bars + 10 + axis << "\">\n";
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
      << pct(m.top1_mean) << "%" << (m.runs > 1 ? " &#177;" + pct(m.top1_std) : "") << "</text>\n";
  }
  // The x axis: ticks every 25% and its title.
  const int base = bars + 8;
  h << "<line x1=\"" << left << "\" y1=\"" << base << "\" x2=\"" << left + width << "\" y2=\""
    << base << "\" stroke=\"#666\"/>";
  for (int t = 0; t <= 4; ++t) {
    const int x = left + width * t / 4;
    h << "<line x1=\"" << x << "\" y1=\"" << base << "\" x2=\"" << x << "\" y2=\"" << base + 4
      << "\" stroke=\"#666\"/><text x=\"" << x << "\" y=\"" << base + 15
      << "\" text-anchor=\"middle\">" << 25 * t << "</text>";
  }
  h << "<text class=\"axis\" x=\"" << left + width / 2 << "\" y=\"" << base + 28
    << "\" text-anchor=\"middle\">top-1 accuracy (%)</text>\n</svg>\n";
  return h.str();
}

std::string methods_table(const ReuseReport& r) {
  std::ostringstream h;
  h << "<table id=\"methods\"><tr><th>method</th><th>top-1 %</th>"
    << (shows_top5(r) ? "<th>top-5 %</th>" : "")
    << "<th>mean class recall %</th><th>what</th></tr>\n";
  for (const auto& m : r.methods) {
    const std::string spread = m.runs > 1 ? " &#177; " : "";
    h << "<tr><td>" << escape(m.name) << "</td><td>" << pct(m.top1_mean)
      << (m.runs > 1 ? spread + pct(m.top1_std) : "") << "</td>";
    if (shows_top5(r)) h << "<td>" << pct(m.top5_mean) << "</td>";
    h << "<td>" << pct(m.recall_mean) << "</td><td>" << escape(m.description) << "</td></tr>\n";
  }
  h << "</table>\n";
  return h.str();
}

// Per-class accuracy (recall) of every evaluated method: classes down, methods across, each
// cell coloured on the heatmaps' scale.
std::string per_class_table(const ReuseReport& r) {
  const auto methods = evaluated(r);
  std::ostringstream h;
  h << "<table id=\"per-class-accuracy\"><tr><th>class</th>";
  for (const auto* m : methods) h << "<th>" << escape(m->name) << " %</th>";
  h << "</tr>\n";
  for (std::size_t y = 0; y < r.classes.size(); ++y) {
    h << "<tr class=\"per-class-row\"><td>" << escape(r.classes[y]) << "</td>";
    for (const auto* m : methods) {
      const double v = m->metrics.class_recall.at(y);
      h << "<td class=\"num\" style=\"background:" << report::heat_colour(v)
        << ";color:" << report::text_colour(v) << "\">" << pct(v) << "</td>";
    }
    h << "</tr>\n";
  }
  h << "</table>\n<p class=\"note\">Per-class accuracy: the share of a class's images predicted "
       "as that class (recall); for Random of its first seed.</p>\n";
  return h.str();
}

std::string chosen_table(const ReuseReport& r) {
  std::ostringstream h;
  h << "<table id=\"chosen\"><tr><th>class</th>"
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
  return h.str();
}

std::string node_heatmap(const ReuseReport& r) {
  report::Heatmap map;
  map.id = "heatmap";
  map.rows = r.heat_models;
  map.cols = r.heat_nodes;
  map.values = r.heat_values;
  map.row_axis = "candidate model";
  map.col_axis = "matched graph node";
  map.legend = "node top-1";
  if (map.rows.empty() || map.cols.empty()) return "<p class=\"note\">No matched nodes.</p>\n";
  return report::heatmap_svg(map);
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
      j["top5"] = number(shows_top5(r) ? m.top5_mean : std::nan(""));
      j["mean_class_recall"] = m.recall_mean;
      if (m.runs > 1) {
        j["runs"] = m.runs;
        j["top1_std"] = m.top1_std;
        j["top5_std"] = number(shows_top5(r) ? m.top5_std : std::nan(""));
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
  h << report::page_begin("mll report: " + r.task);
  h << "<h1>Task " << escape(r.task) << "</h1>\n<p id=\"summary\">" << r.classes.size()
    << " classes, " << r.images.size() << " images" << (r.labeled ? " (labeled)" : " (unlabeled)")
    << "; models run: " << escape(join(r.models_run, ", ")) << "</p>\n";
  for (const auto& w : r.warnings) h << "<p class=\"warn\">" << escape(w) << "</p>\n";

  h << "<h2>Accuracy</h2>\n";
  if (r.labeled) {
    h << accuracy_chart(r);
  } else {
    h << "<p>The task is unlabeled: no accuracy.</p>\n";
  }
  h << methods_table(r);
  if (r.labeled) {
    h << "<h2>Per-class accuracy</h2>\n" << per_class_table(r);
    h << "<h2>Confusion matrices</h2>\n";
    const auto methods = evaluated(r);
    for (std::size_t i = 0; i < methods.size(); ++i) {
      h << "<h3 class=\"confusion-title\">" << escape(methods[i]->name)
        << (methods[i]->runs > 1 ? " (first seed)" : "") << "</h3>\n"
        << report::heatmap_svg(confusion_heatmap(r, *methods[i], i));
    }
  }
  h << "<h2>Chosen models and matched nodes</h2>\n" << chosen_table(r);
  h << "<h2>Model labels over the task's nodes (node top-1)</h2>\n" << node_heatmap(r);
  h << report::page_end();
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
    const bool top5 = shows_top5(r);
    md << "\n| method | top-1 % |" << (top5 ? " top-5 % |" : "") << " mean class recall % |\n"
       << "| --- | ---: |" << (top5 ? " ---: |" : "") << " ---: |\n";
    for (const auto& m : r.methods) {
      md << "| " << m.name << " | " << pct(m.top1_mean)
         << (m.runs > 1 ? " ± " + pct(m.top1_std) : "") << " | ";
      if (top5) md << pct(m.top5_mean) << " | ";
      md << pct(m.recall_mean) << " |\n";
    }
  }
  for (std::size_t y = 0; y < r.classes.size(); ++y) {
    for (const auto& w : r.selection.warnings[y]) md << "\nwarning: " << w << "\n";
  }
  for (const auto& w : r.warnings) md << "\nwarning: " << w << "\n";
  return md.str();
}

std::string per_class_csv(const ReuseReport& r) {
  const auto methods = evaluated(r);
  std::ostringstream csv;
  csv << "class,images";
  for (const auto* m : methods) csv << ',' << csv_field(m->name);
  csv << "\n";
  std::vector<std::int64_t> images(r.classes.size(), 0);
  for (const auto label : r.labels) {
    if (label >= 0) ++images[static_cast<std::size_t>(label)];
  }
  for (std::size_t y = 0; y < r.classes.size(); ++y) {
    csv << csv_field(r.classes[y]) << ',' << images[y];
    for (const auto* m : methods) {
      const double v = m->metrics.class_recall.at(y);
      csv << ',' << (std::isnan(v) ? std::string() : fixed(v, 6));
    }
    csv << "\n";
  }
  return csv.str();
}

std::string confusion_csv(const ReuseReport& r) {
  std::ostringstream csv;
  csv << "method,true_class,predicted_class,images\n";
  const auto c = r.classes.size();
  for (const auto* m : evaluated(r)) {
    for (std::size_t a = 0; a < c; ++a) {
      for (std::size_t b = 0; b < c; ++b) {
        csv << csv_field(m->name) << ',' << csv_field(r.classes[a]) << ','
            << csv_field(r.classes[b]) << ',' << m->metrics.confusion[a * c + b] << "\n";
      }
    }
  }
  return csv.str();
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
  if (r.labeled) {
    select::write_text_atomic(dir + "/per_class.csv", per_class_csv(r));
    select::write_text_atomic(dir + "/confusion.csv", confusion_csv(r));
  }
}

}  // namespace mll::reuse
