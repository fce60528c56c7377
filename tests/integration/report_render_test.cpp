// The pages people read, rendered by a browser: the task report (reuse), the zoo overview
// (mll report) and the model card (mll zoo show --html) of a labeled tiny world, each
// screenshot in headless Chromium (a PNG that is not a single colour) and its DOM checked for
// the elements it must have. Skipped when Chromium is not installed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "label_world.hpp"
#include "mll/image/image.hpp"
#include "run_command.hpp"

namespace mll::test {
namespace {

namespace stdfs = std::filesystem;
using nlohmann::json;

const char* kFlags = " --device cpu --threads 1 --decode-threads 1";
const char* kChromium = "/usr/bin/chromium";

// Six seeds: more than five classes, so the report has its top-5 column.
const std::vector<std::pair<std::string, std::string>>& task_classes() {
  static const std::vector<std::pair<std::string, std::string>> classes = {
      {"n02085620", "Chihuahua"}, {"n02099601", "golden retriever"}, {"n02110958", "pug"},
      {"n01440764", "tench"},     {"n01443537", "goldfish"},         {"n04037443", "racer"},
  };
  return classes;
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

class ReportRenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!stdfs::exists(kChromium)) GTEST_SKIP() << "chromium is not installed";
    const std::string d = dir_.path();
    std::ofstream seeds(d + "/seeds.txt");
    for (const auto& wnid : world_seeds()) seeds << wnid << "\n";
    seeds.close();
    auto r = run_mll("graph build --seeds " + d + "/seeds.txt -o " + d + "/graph.h5", dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    write_world_images(d + "/images", world_seeds(), 8, 40);
    ids_ = write_world_models(d + "/models", zoo(), 3);
    r = run_mll("probe build --graph " + d + "/graph.h5 --images " + d +
                    "/images --per-node 30 --store " + store(),
                dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = run_mll("label --store " + store() + " --zoo " + zoo() + kFlags +
                    " --batch 8 --unit 16 --no-progress",
                dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::string store() const { return dir_ / "store.h5"; }
  std::string zoo() const { return dir_ / "zoo.json"; }

  // A task over every seed, its images in class-named folders, through select and reuse.
  void write_task_report(const std::string& out) {
    write_world_images(dir_ / "target_raw", world_seeds(), 3, 36, 3);
    std::string classes;
    for (const auto& [wnid, name] : task_classes()) {
      stdfs::create_directories(dir_ / ("target/" + name));
      for (const auto& e : stdfs::directory_iterator(dir_ / ("target_raw/" + wnid))) {
        stdfs::copy_file(e.path(), dir_ / ("target/" + name + "/" + e.path().filename().string()));
      }
      classes += (classes.empty() ? "\"" : ", \"") + name + "\"";
    }
    std::ofstream(dir_ / "task.json")
        << R"({"name": "world", "classes": [)" << classes << R"(], "images": {"dir": "target"}})";
    const std::string sel = dir_ / "selection.json";
    auto r = run_mll("select --store " + store() + " --task " + (dir_ / "task.json") + " --zoo " +
                         zoo() + " --out " + sel,
                     dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = run_mll("reuse --store " + store() + " --task " + (dir_ / "task.json") + " --selection " +
                    sel + " --zoo " + zoo() + " --out " + out + kFlags,
                dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::string chromium(const std::string& what) const {
    return std::string(kChromium) +
           " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
           "--disable-background-networking --disable-component-update --disable-sync "
           "--hide-scrollbars --user-data-dir=" +
           (dir_ / "chromium-profile") + " " + what;
  }

  // The page as the browser parsed it.
  std::string dom(const std::string& html) {
    const auto r = run_command(chromium("--dump-dom file://" + html) + " 2>/dev/null", dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }

  // A 1200 x 900 screenshot: a PNG of that size with more than one colour in it.
  void expect_screenshot(const std::string& html, const std::string& png) {
    const auto r = run_command(
        chromium("--screenshot=" + png + " --window-size=1200,900 file://" + html), dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_TRUE(stdfs::exists(png)) << r.err;
    EXPECT_GT(stdfs::file_size(png), 1000u);
    const auto image = image::decode_file(png);
    EXPECT_EQ(image.width(), 1200);
    EXPECT_EQ(image.height(), 900);
    std::set<std::uint32_t> colours;
    for (std::size_t i = 0; i + 2 < image.pixels().size() && colours.size() < 8; i += 3) {
      const auto* p = image.data() + i;
      colours.insert(std::uint32_t{p[0]} << 16 | std::uint32_t{p[1]} << 8 | p[2]);
    }
    EXPECT_GE(colours.size(), 8u) << png << " is (nearly) one colour";
  }

  ScratchDir dir_;
  std::vector<std::string> ids_;
};

TEST_F(ReportRenderTest, TaskReportHasConfusionMatricesLegendsAndPerClassAccuracy) {
  const std::string out = dir_ / "out";
  write_task_report(out);
  const auto report = json::parse(slurp(out + "/report.json"));
  const auto methods = report["methods"].size();
  ASSERT_EQ(methods, 6u);
  const auto page = dom(out + "/report.html");
  // One confusion matrix per method, with the class names on both axes.
  EXPECT_EQ(count(page, "<svg id=\"confusion-"), methods);
  EXPECT_EQ(count(page, "<rect class=\"cm-cell\""), methods * 36);
  for (const auto& [wnid, name] : task_classes()) {
    EXPECT_GE(count(page, ">" + name + "</text>"), 2 * methods) << name;
  }
  EXPECT_EQ(count(page, ">true class</text>"), methods);
  EXPECT_EQ(count(page, ">predicted class</text>"), methods);
  // Every heatmap (confusions and node top-1) has a legend.
  EXPECT_EQ(count(page, "<g class=\"legend\">"), count(page, "class=\"heatmap\""));
  EXPECT_EQ(count(page, "class=\"heatmap\""), methods + 1);
  EXPECT_EQ(count(page, "class=\"per-class-row\""), 6u);
  EXPECT_NE(page.find("<th>top-5 %</th>"), std::string::npos);  // 6 classes > 5
  // The same numbers beside the page.
  EXPECT_EQ(count(slurp(out + "/per_class.csv"), "\n"), 7u);
  EXPECT_EQ(count(slurp(out + "/confusion.csv"), "\n"), 1 + methods * 36);
  expect_screenshot(out + "/report.html", dir_ / "report.png");
}

TEST_F(ReportRenderTest, ZooOverviewHasOneRowPerModelAndALegend) {
  const std::string html = dir_ / "overview/zoo.html";
  const auto r = run_mll("report --store " + store() + " --out " + html, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto overview = json::parse(slurp(dir_ / "overview/zoo.json"));
  ASSERT_EQ(overview["models"].size(), ids_.size());
  const auto columns = overview["subtrees"].size();
  EXPECT_GE(columns, 2u);  // the dogs, the fish and the car part at some level
  const auto page = dom(html);
  EXPECT_EQ(count(page, "class=\"model-row\""), ids_.size());
  for (const auto& id : ids_) {
    EXPECT_NE(page.find("data-model=\"" + id + "\""), std::string::npos) << id;
    EXPECT_GE(count(page, ">" + id + "</text>"), 1u) << id;  // a heatmap row
  }
  EXPECT_EQ(count(page, "<rect class=\"cell\""), ids_.size() * columns);
  EXPECT_NE(page.find("<g class=\"legend\">"), std::string::npos);
  EXPECT_NE(page.find(">top-level subtree</text>"), std::string::npos);
  EXPECT_NE(page.find(">model</text>"), std::string::npos);
  EXPECT_NE(page.find("id=\"provenance\""), std::string::npos);
  EXPECT_NE(page.find("id=\"overall-progress\""), std::string::npos);
  for (const auto& m : overview["models"]) {
    EXPECT_TRUE(m["labeled"].get<bool>());
    EXPECT_EQ(m["images_done"], m["images_total"]);
    EXPECT_FALSE(m["best"].empty());
  }
  expect_screenshot(html, dir_ / "overview.png");
}

TEST_F(ReportRenderTest, ModelCardShowsTheLabelAndProvenance) {
  const std::string html = dir_ / "card.html";
  const auto r = run_mll("zoo show " + ids_[0] + " --store " + store() + " --html " + html, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("best subtrees"), std::string::npos) << r.out;
  const auto page = dom(html);
  EXPECT_NE(page.find("id=\"card-heatmap\""), std::string::npos);
  EXPECT_NE(page.find("<g class=\"legend\">"), std::string::npos);
  EXPECT_NE(page.find("id=\"best\""), std::string::npos);
  EXPECT_NE(page.find("id=\"worst\""), std::string::npos);
  EXPECT_NE(page.find("id=\"sidecar\""), std::string::npos);
  EXPECT_NE(page.find("model sha256"), std::string::npos);
  expect_screenshot(html, dir_ / "card.png");
  // An unknown model is a usage error (64) and writes nothing.
  const auto bad = run_mll("zoo show nope --store " + store() + " --html " + html + ".x", dir_);
  EXPECT_EQ(bad.exit_code, 64) << bad.err;
  EXPECT_FALSE(stdfs::exists(html + ".x"));
}

// `mll run` over two tasks: the cross-task summary page, with one row per task and the average.
TEST_F(ReportRenderTest, SummaryPageOfSeveralTasksHasOneRowPerTask) {
  write_task_report(dir_ / "single");  // writes task.json (and its images) and checks select
  // The same task twice under two names, its image folder given by absolute path.
  std::string task = slurp(dir_ / "task.json");
  task.replace(task.find("\"target\""), 8, "\"" + (dir_ / "target") + "\"");
  stdfs::create_directories(dir_ / "tasks");
  std::ofstream(dir_ / "tasks/a.json") << task;
  task.replace(task.find("\"world\""), 7, "\"world-b\"");
  std::ofstream(dir_ / "tasks/b.json") << task;
  const std::string grid = dir_ / "grid";
  const auto r = run_mll("run --store " + store() + " --zoo " + zoo() + " --task " +
                             (dir_ / "tasks") + " --out " + grid + kFlags,
                         dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto page = dom(grid + "/summary.html");
  EXPECT_NE(page.find("id=\"summary-table\""), std::string::npos);
  EXPECT_EQ(count(page, "class=\"task-row\""), 2u);
  EXPECT_NE(page.find("data-task=\"world\""), std::string::npos);
  EXPECT_NE(page.find("data-task=\"world-b\""), std::string::npos);
  EXPECT_EQ(count(slurp(grid + "/summary.csv"), "\n"), 4u);  // header, 2 tasks, average
  expect_screenshot(grid + "/summary.html", dir_ / "summary.png");
}

}  // namespace
}  // namespace mll::test
