// The cross-task table: top-1 accuracy of MLL at each k of a grid and of every baseline, one row
// per task plus the average, built from the tasks' report.json files. `mll demo` and `mll run`
// over several tasks print and write this one table, so their numbers can be compared as they
// stand. Nothing here is collective.
#pragma once

#include <string>
#include <vector>

namespace mll::reuse {

// One task's finished results: report.json of MLL at each k of the grid, in grid order; the first
// also carries the baselines (the later ones are reused with --no-baselines).
struct TaskReports {
  std::string name;
  std::vector<std::string> reports;  // report.json per k; empty: the task has no images
  std::string html;                  // the first k's report.html, as the summary page links it
  bool reused = false;               // read from an earlier run rather than computed now
};

struct SummaryTable {
  std::vector<std::string> columns;  // "MLL k=K" per k, then the baselines
  std::vector<std::string> tasks;
  std::vector<std::vector<double>> top1;  // tasks x columns, fractions; NaN: no value
  std::vector<std::string> html;          // per task, as TaskReports::html
  std::vector<bool> reused;               // per task

  // The mean of each column over the tasks that have a value in it (NaN when none has).
  std::vector<double> average() const;
};

// The baselines' columns, in the order reports list them.
const std::vector<std::string>& summary_baselines();

// Reads every task's reports into one table with columns "MLL k=K" for each of `ks` followed by
// summary_baselines(). Throws DataError naming a report that is missing or not a reuse report,
// UsageError when a task's report count differs from ks.size().
SummaryTable summarize(const std::vector<int>& ks, const std::vector<TaskReports>& tasks);

// The table as Markdown (percentages with one decimal, "-" for no value, the average in bold).
std::string summary_markdown(const SummaryTable& table);
// task,<columns...> with fractions to 6 decimals (empty: no value); the last row is "average".
std::string summary_csv(const SummaryTable& table);
// {"kind": "mll-run-summary", "columns", "tasks": [{"name", "top1": {...}, "report", "reused"}],
// "average": {...}}; no value is null.
std::string summary_json(const SummaryTable& table);
// A self-contained page (inline CSS, no scripts or external resources) with the table, cells
// shaded by accuracy, and a link to each task's report. `dir` is where the page will lie: links
// are relative to it.
std::string summary_html(const SummaryTable& table, const std::string& title,
                         const std::string& dir);

// summary.csv, summary.json and summary.html in `dir`, each written atomically. IoError.
void write_summary(const SummaryTable& table, const std::string& title, const std::string& dir);

}  // namespace mll::reuse
