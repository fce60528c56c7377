// mll report: the zoo overview of a label store (docs/reports.md).
#include <filesystem>
#include <iostream>

#include "command.hpp"
#include "mll/core/error.hpp"
#include "mll/report/zoo.hpp"
#include "mll/select/selection_file.hpp"
#include "mll/store/store.hpp"

namespace mll::cli {
namespace {

void report_options(po::options_description& d, po::positional_options_description& p) {
  d.add_options()("store,s",
                  po::value<std::string>()->default_value("store.h5")->value_name("FILE"),
                  "label store (index file; its data lives in FILE.d/)")(
      "out,o", po::value<std::string>()->default_value("zoo-overview.html")->value_name("FILE"),
      "the HTML page to write; the same numbers go to FILE with .json for .html")(
      "columns", po::value<int>()->default_value(16)->value_name("N"),
      "at most N top-level subtrees (heatmap columns)")(
      "top", po::value<int>()->default_value(3)->value_name("N"),
      "best and worst subtrees listed per model")(
      "min-images", po::value<int>()->default_value(50)->value_name("N"),
      "rank only subtrees with at least this many probe memberships below them");
  p.add("store", 1);
}

report::OverviewOptions overview_options(const po::variables_map& vm) {
  report::OverviewOptions options;
  options.columns = vm["columns"].as<int>();
  options.top = vm["top"].as<int>();
  options.min_images = vm["min-images"].as<int>();
  if (options.columns < 1) MLL_THROW(UsageError, "--columns must be positive");
  if (options.top < 1) MLL_THROW(UsageError, "--top must be positive");
  if (options.min_images < 0) MLL_THROW(UsageError, "--min-images must be >= 0");
  return options;
}

// FILE.html -> FILE.json (any other name gets .json appended).
std::string json_beside(const std::string& html) {
  std::filesystem::path path(html);
  if (path.extension() == ".html" || path.extension() == ".htm") {
    return path.replace_extension(".json").string();
  }
  return html + ".json";
}

int report_run(const po::variables_map& vm, distributed::Session& session) {
  const auto options = overview_options(vm);
  const auto store = store::Store::open(vm["store"].as<std::string>(), store::Store::Mode::kRead);
  const auto overview = report::zoo_overview(store, options);
  const std::string out = vm["out"].as<std::string>();
  const auto parent = std::filesystem::path(out).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) MLL_THROW(IoError, out, ": cannot create the folder: ", ec.message());
  select::write_text_atomic(out, report::zoo_overview_html(overview));
  select::write_text_atomic(json_beside(out), report::zoo_overview_json(overview));
  std::cout << "wrote " << out << " and " << json_beside(out) << " (" << overview.models.size()
            << " models x " << overview.columns.size() << " subtrees)\n";
  return 0;
}

}  // namespace

void add_report_commands(std::vector<Command>& commands) {
  commands.push_back({"report",
                      "the zoo overview: models x top-level subtrees heatmap, best and worst "
                      "subtrees, provenance and progress (HTML + JSON)",
                      "[STORE] [--out zoo-overview.html]", report_options, report_run});
  commands.back().example = "mll report --store store.h5 --out zoo-overview.html";
}

}  // namespace mll::cli
