// The cross-task table of `mll demo` and `mll run`, read from the tasks' report.json files.
#include "mll/reuse/summary.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mll/core/error.hpp"
#include "mll/report/html.hpp"
#include "mll/select/selection_file.hpp"

namespace mll::reuse {
namespace {

namespace stdfs = std::filesystem;
using nlohmann::json;

using report::pct;

std::string fraction(double v) {
  if (std::isnan(v)) return "";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6f", v);
  return buffer;
}

json number(double v) { return std::isnan(v) ? json(nullptr) : json(v); }

// Each method's top-1 in one report.json, by method name. Throws DataError naming the file.
std::map<std::string, double> read_top1(const std::string& path) {
  std::ifstream in(path);
  if (!in) MLL_THROW(DataError, path, ": missing (no reuse report)");
  json doc;
  try {
    doc = json::parse(in);
  } catch (const json::exception& e) {
    MLL_THROW(DataError, path, ": not a reuse report (", e.what(), ")");
  }
  if (!doc.is_object() || doc.value("kind", "") != "mll-reuse-report" || !doc.contains("methods") ||
      !doc["methods"].is_array()) {
    MLL_THROW(DataError, path, ": not a reuse report (kind mll-reuse-report with methods)");
  }
  std::map<std::string, double> top1;
  for (const auto& m : doc["methods"]) {
    const auto t = m.find("top1");
    top1[m.value("name", "")] = t != m.end() && t->is_number() ? t->get<double>() : NAN;
  }
  return top1;
}

// A file's path as a link from `dir`: relative when both resolve, else absolute.
std::string link_from(const std::string& dir, const std::string& file) {
  std::error_code ec;
  const auto base = stdfs::weakly_canonical(stdfs::absolute(dir), ec);
  const auto target = stdfs::weakly_canonical(stdfs::absolute(file), ec);
  if (ec) return file;
  const auto rel = target.lexically_relative(base);
  return rel.empty() ? target.string() : rel.string();
}

}  // namespace

const std::vector<std::string>& summary_baselines() {
  static const std::vector<std::string> names = {"INB", "INB-3", "Random", "All models", "Oracle"};
  return names;
}

std::vector<double> SummaryTable::average() const {
  std::vector<double> sums(columns.size(), 0.0);
  std::vector<std::size_t> counts(columns.size(), 0);
  for (const auto& row : top1) {
    for (std::size_t c = 0; c < columns.size(); ++c) {
      if (std::isnan(row[c])) continue;
      sums[c] += row[c];
      ++counts[c];
    }
  }
  for (std::size_t c = 0; c < columns.size(); ++c)
    sums[c] = counts[c] ? sums[c] / static_cast<double>(counts[c]) : NAN;
  return sums;
}

SummaryTable summarize(const std::vector<int>& ks, const std::vector<TaskReports>& tasks) {
  SummaryTable table;
  for (const int k : ks) table.columns.push_back("MLL k=" + std::to_string(k));
  for (const auto& b : summary_baselines()) table.columns.push_back(b);
  for (const auto& task : tasks) {
    std::vector<double> row(table.columns.size(), NAN);
    if (!task.reports.empty()) {
      if (task.reports.size() != ks.size()) {
        MLL_THROW(UsageError, "task ", task.name, ": ", task.reports.size(), " reports for ",
                  ks.size(), " values of k");
      }
      for (std::size_t i = 0; i < ks.size(); ++i) {
        const auto top1 = read_top1(task.reports[i]);
        if (top1.count("MLL")) row[i] = top1.at("MLL");
        if (i != 0) continue;
        // The baselines do not depend on k: the first report carries them.
        for (std::size_t b = 0; b < summary_baselines().size(); ++b) {
          const auto it = top1.find(summary_baselines()[b]);
          if (it != top1.end()) row[ks.size() + b] = it->second;
        }
      }
    }
    table.tasks.push_back(task.name);
    table.top1.push_back(row);
    table.html.push_back(task.html);
    table.reused.push_back(task.reused);
  }
  return table;
}

std::string summary_markdown(const SummaryTable& t) {
  std::ostringstream md;
  md << "| task |";
  for (const auto& c : t.columns) md << " " << c << " |";
  md << "\n|---|";
  for (std::size_t c = 0; c < t.columns.size(); ++c) md << "---|";
  md << "\n";
  for (std::size_t r = 0; r < t.tasks.size(); ++r) {
    md << "| " << t.tasks[r] << " |";
    for (const double v : t.top1[r]) md << " " << pct(v) << " |";
    md << "\n";
  }
  md << "| **average** |";
  for (const double v : t.average()) md << " **" << pct(v) << "** |";
  md << "\n";
  return md.str();
}

std::string summary_csv(const SummaryTable& t) {
  std::ostringstream csv;
  csv << "task";
  for (const auto& c : t.columns) csv << "," << c;
  csv << "\n";
  for (std::size_t r = 0; r < t.tasks.size(); ++r) {
    csv << t.tasks[r];
    for (const double v : t.top1[r]) csv << "," << fraction(v);
    csv << "\n";
  }
  csv << "average";
  for (const double v : t.average()) csv << "," << fraction(v);
  csv << "\n";
  return csv.str();
}

std::string summary_json(const SummaryTable& t) {
  json doc;
  doc["kind"] = "mll-run-summary";
  doc["metric"] = "top1";
  doc["columns"] = t.columns;
  json tasks = json::array();
  for (std::size_t r = 0; r < t.tasks.size(); ++r) {
    json row = json::object();
    for (std::size_t c = 0; c < t.columns.size(); ++c) row[t.columns[c]] = number(t.top1[r][c]);
    tasks.push_back(
        {{"name", t.tasks[r]}, {"top1", row}, {"report", t.html[r]}, {"reused", t.reused[r]}});
  }
  doc["tasks"] = tasks;
  json average = json::object();
  const auto mean = t.average();
  for (std::size_t c = 0; c < t.columns.size(); ++c) average[t.columns[c]] = number(mean[c]);
  doc["average"] = average;
  return doc.dump(1) + "\n";
}

std::string summary_html(const SummaryTable& t, const std::string& title, const std::string& dir) {
  using report::escape;
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" << escape(title)
    << "</title>\n<style>\n"
    << "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
       "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
       "th{background:#eee}td.task{text-align:left}tr.average td{font-weight:bold}"
       ".note{color:#666}\n</style></head><body>\n"
    << "<h1>" << escape(title) << "</h1>\n<p>Top-1 accuracy (%) per task; cells shaded from white "
    << "(0%) to dark blue (100%). Random is the mean over its seeds; Oracle (the best single model "
       "on the test labels) is an upper reference.</p>\n"
    << "<table id=\"summary-table\"><tr><th>task</th>";
  for (const auto& c : t.columns) h << "<th>" << escape(c) << "</th>";
  h << "</tr>\n";
  const auto cell = [&](double v) {
    const bool dark = !std::isnan(v) && v > 0.55;
    h << "<td class=\"value\" style=\"background:"
      << (std::isnan(v) ? std::string("#fff") : report::heat_colour(v))
      << (dark ? ";color:" + report::text_colour(v) : std::string()) << "\">" << pct(v) << "</td>";
  };
  for (std::size_t r = 0; r < t.tasks.size(); ++r) {
    h << "<tr class=\"task-row\" data-task=\"" << escape(t.tasks[r]) << "\"><td class=\"task\">";
    if (t.html[r].empty()) {
      h << escape(t.tasks[r]);
    } else {
      h << "<a href=\"" << escape(link_from(dir, t.html[r])) << "\">" << escape(t.tasks[r])
        << "</a>";
    }
    if (t.reused[r]) h << " <span class=\"note\">(earlier run)</span>";
    h << "</td>";
    for (const double v : t.top1[r]) cell(v);
    h << "</tr>\n";
  }
  h << "<tr class=\"average\"><td class=\"task\">average</td>";
  for (const double v : t.average()) cell(v);
  h << "</tr>\n</table>\n</body></html>\n";
  return h.str();
}

void write_summary(const SummaryTable& table, const std::string& title, const std::string& dir) {
  std::error_code ec;
  stdfs::create_directories(dir, ec);
  if (ec) MLL_THROW(IoError, dir, ": cannot create the output folder: ", ec.message());
  select::write_text_atomic(dir + "/summary.csv", summary_csv(table));
  select::write_text_atomic(dir + "/summary.json", summary_json(table));
  select::write_text_atomic(dir + "/summary.html", summary_html(table, title, dir));
}

}  // namespace mll::reuse
