// The task report built from hand-made predictions: a confusion matrix and per-class accuracy for
// every method, legends and axis titles on every heatmap, top-5 only for more than 5 classes, and
// the CSV tables beside the page.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "mll/reuse/reuse.hpp"

namespace mll::reuse {
namespace {

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

// `classes` classes, two images each; model "a" is right on every image, "b" always says class 0.
ReuseReport make_report(std::size_t classes) {
  ReuseReport r;
  r.task = "t";
  r.labeled = true;
  for (std::size_t y = 0; y < classes; ++y) {
    r.classes.push_back("class, " + std::to_string(y));
    for (int k = 0; k < 2; ++k) {
      r.images.push_back("img" + std::to_string(y) + "_" + std::to_string(k) + ".png");
      r.labels.push_back(static_cast<std::int32_t>(y));
    }
  }
  auto& s = r.selection;
  s.task = r.task;
  s.classes = r.classes;
  s.models = {"a", "b"};
  s.k = 1;
  s.chosen.assign(classes, {select::Choice{"a", 0.9}});
  s.node_wnids.assign(classes, {});
  s.node_names.assign(classes, {});
  s.node_weights.assign(classes, {});
  s.warnings.assign(classes, {});
  r.general = {{"a", 0.4}, {"b", 0.6}};
  r.general_source = "imagenet_top1";
  const auto n = static_cast<std::int64_t>(r.images.size());
  const auto c = static_cast<std::int64_t>(classes);
  auto a = MatrixD::zeros(n, c), b = MatrixD::zeros(n, c);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t y = 0; y < c; ++y) {
      a.row(i)[y] = y == r.labels[static_cast<std::size_t>(i)] ? 0.9 : 0.1 / (c - 1);
      b.row(i)[y] = y == 0 ? 0.9 : 0.1 / (c - 1);
    }
  }
  ReuseOptions options;
  options.random_seeds = 2;
  combine(r, {{"a", a}, {"b", b}}, options);
  r.heat_models = {"a", "b"};
  r.heat_nodes = {"n.n.01"};
  r.heat_values = {0.5, 0.25};
  return r;
}

TEST(TaskReport, ConfusionMatrixAndPerClassAccuracyForEveryMethod) {
  const auto r = make_report(4);
  const auto html = report_html(r);
  const auto methods = r.methods.size();  // MLL, INB, INB-3, Random, All models, Oracle
  ASSERT_EQ(methods, 6u);
  EXPECT_EQ(count(html, "class=\"heatmap\""), methods + 1);  // confusions + node top-1
  EXPECT_EQ(count(html, "<g class=\"legend\">"), methods + 1);
  EXPECT_EQ(count(html, ">true class</text>"), methods);
  EXPECT_EQ(count(html, ">predicted class</text>"), methods);
  EXPECT_EQ(count(html, ">matched graph node</text>"), 1u);
  EXPECT_EQ(count(html, "<rect class=\"cm-cell\""), methods * 16);
  EXPECT_EQ(count(html, "<rect class=\"cell\""), 2u);
  // Class names label both axes of each confusion matrix.
  EXPECT_GE(count(html, ">class, 3</text>"), 2 * methods);
  EXPECT_EQ(count(html, "class=\"per-class-row\""), 4u);
  EXPECT_NE(html.find("id=\"per-class-accuracy\""), std::string::npos);
  EXPECT_NE(html.find(">top-1 accuracy (%)</text>"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("<script src"), std::string::npos);
}

TEST(TaskReport, TopFiveOnlyForMoreThanFiveClasses) {
  for (const std::size_t classes : {std::size_t{4}, std::size_t{5}, std::size_t{6}}) {
    const auto r = make_report(classes);
    const bool shown = classes > 5;
    EXPECT_EQ(report_html(r).find("top-5") != std::string::npos, shown) << classes;
    EXPECT_EQ(markdown_summary(r).find("top-5") != std::string::npos, shown) << classes;
    const auto json = nlohmann::json::parse(report_json(r));
    EXPECT_EQ(json["methods"][0]["top5"].is_null(), !shown) << classes;
  }
}

TEST(TaskReport, CsvTablesHoldTheSameNumbers) {
  const auto r = make_report(4);
  const auto per_class = per_class_csv(r);
  EXPECT_EQ(per_class.substr(0, per_class.find('\n')),
            "class,images,MLL,INB,INB-3,Random,All models,Oracle");
  // MLL (model a) is right on every image; INB (model b, the better general one) only on class 0.
  EXPECT_NE(per_class.find("\"class, 0\",2,1.000000,1.000000"), std::string::npos) << per_class;
  EXPECT_NE(per_class.find("\"class, 1\",2,1.000000,0.000000"), std::string::npos) << per_class;
  const auto confusion = confusion_csv(r);
  EXPECT_EQ(count(confusion, "\n"), 1 + 6 * 16u);
  EXPECT_NE(confusion.find("INB,\"class, 1\",\"class, 0\",2\n"), std::string::npos) << confusion;
  EXPECT_NE(confusion.find("MLL,\"class, 1\",\"class, 1\",2\n"), std::string::npos);
}

}  // namespace
}  // namespace mll::reuse
