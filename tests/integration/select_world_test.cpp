// Selection and reuse through the mll binary on a labeled tiny world: select against an
// independent re-implementation (tools/select_reference.py), reuse with baselines and the report
// (opened in headless Chromium), mll run, and bad inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "label_world.hpp"
#include "mll/feed/inputs.hpp"
#include "mll/store/store.hpp"
#include "mll/zoo/runner.hpp"
#include "run_command.hpp"

namespace mll::test {
namespace {

namespace stdfs = std::filesystem;
using nlohmann::json;

const char* kFlags = " --device cpu --threads 1 --decode-threads 1";

// The world's seeds as task classes (folder names = class names).
const std::vector<std::pair<std::string, std::string>>& task_classes() {
  static const std::vector<std::pair<std::string, std::string>> classes = {
      {"n02085620", "Chihuahua"},
      {"n02099601", "golden retriever"},
      {"n02110958", "pugs"},  // a plural: WordNet's morphology finds pug
      {"n01443537", "goldfish"},
  };
  return classes;
}

class SelectWorldTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string d = dir_.path();
    std::ofstream seeds(d + "/seeds.txt");
    for (const auto& wnid : world_seeds()) seeds << wnid << "\n";
    seeds.close();
    auto r = run_mll("graph build --seeds " + d + "/seeds.txt -o " + d + "/graph.h5", dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    write_world_images(d + "/images", world_seeds(), 10, 40);
    ids_ = write_world_models(d + "/models", zoo(), 3);
    r = run_mll("probe build --graph " + d + "/graph.h5 --images " + d +
                    "/images --per-node 40 --store " + store(),
                dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = run_mll("label --store " + store() + " --zoo " + zoo() + kFlags +
                    " --batch 8 --unit 16 --no-progress",
                dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // Target images: other renderings (salt 3) of the seeds, in class-named folders.
    write_world_images(d + "/target_raw", world_seeds(), 4, 36, 3);
    for (const auto& [wnid, name] : task_classes()) {
      stdfs::create_directories(d + "/target/" + name);
      for (const auto& e : stdfs::directory_iterator(d + "/target_raw/" + wnid)) {
        stdfs::copy_file(e.path(), d + "/target/" + name + "/" + e.path().filename().string());
      }
    }
    write_task("task.json", R"({"name": "pets", "classes": ["Chihuahua", "golden retriever",
        "pugs", "goldfish"], "domain": "photos of pets", "images": {"dir": "target"}})");
  }

  void write_task(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  std::string store() const { return dir_ / "store.h5"; }
  std::string zoo() const { return dir_ / "zoo.json"; }
  CommandResult select(const std::string& extra) {
    return run_mll("select --store " + store() + " " + extra, dir_);
  }
  static json load(const std::string& path) { return json::parse(slurp(path)); }

  ScratchDir dir_;
  std::vector<std::string> ids_;
};

bool have_python_h5py() {
  return std::system("/usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null") == 0;
}

TEST_F(SelectWorldTest, SelectionEqualsTheIndependentReimplementation) {
  for (const std::string options :
       {"", " --metric recall --k 2", " --metric f1 --mix others --alpha 0.5 --k 3"}) {
    const std::string out = dir_ / "selection.json";
    const auto r =
        select("--task " + (dir_ / "task.json") + " --zoo " + zoo() + " --out " + out + options);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto sel = load(out);
    ASSERT_EQ(sel["classes"].size(), 4u);
    // Every class matched its seed node by lemma (morphology: "pugs" -> pug) with most weight.
    for (std::size_t y = 0; y < 4; ++y) {
      const auto& top = sel["classes"][y]["matched_nodes"][0];
      EXPECT_EQ(top["wnid"], task_classes()[y].first) << sel["classes"][y]["name"];
      EXPECT_TRUE(top["lexical"].get<bool>());
      EXPECT_GT(top["weight"].get<double>(), 0.99);
      double sum = 0;
      for (const auto& n : sel["classes"][y]["matched_nodes"]) sum += n["weight"].get<double>();
      EXPECT_NEAR(sum, 1.0, 1e-9);
      EXPECT_LE(sel["classes"][y]["matched_nodes"].size(), 5u);
      EXPECT_TRUE(sel["classes"][y]["warnings"].empty());
    }
    // The copy inside the store is the same file.
    EXPECT_EQ(slurp(out), slurp(store() + ".d/selections/pets.json"));
    if (!have_python_h5py()) GTEST_SKIP() << "python3-h5py or numpy is not installed";
    const auto ref = run_command(
        "/usr/bin/python3 " + source_dir() + "/tools/select_reference.py " + store() + " " + out,
        dir_);
    ASSERT_EQ(ref.exit_code, 0) << ref.err;
    const auto expected = json::parse(ref.out);
    for (std::size_t y = 0; y < 4; ++y) {
      const auto& a = sel["classes"][y]["chosen"];
      const auto& b = expected["classes"][y]["chosen"];
      ASSERT_EQ(a.size(), b.size()) << options;
      for (std::size_t j = 0; j < a.size(); ++j) {
        EXPECT_EQ(a[j]["model"], b[j]["model"]) << options << " class " << y;
        EXPECT_NEAR(a[j]["score"].get<double>(), b[j]["score"].get<double>(), 1e-6) << options;
      }
    }
  }
}

TEST_F(SelectWorldTest, ReuseReportsEveryBaselineAndChromiumRendersTheReport) {
  const std::string sel = dir_ / "selection.json";
  auto r = select("--task " + (dir_ / "task.json") + " --zoo " + zoo() + " --out " + sel);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ofstream(dir_ / "templates.txt")
      << "a photo of a {class}.\n# comment\nan image of {class}\n";
  r = run_mll("reuse --store " + store() + " --task " + (dir_ / "task.json") + " --selection " +
                  sel + " --zoo " + zoo() + " --templates " + (dir_ / "templates.txt") + " --out " +
                  (dir_ / "out") + kFlags,
              dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| MLL |"), std::string::npos) << r.out;
  const auto report = load(dir_ / "out/report.json");
  std::vector<std::string> names;
  for (const auto& m : report["methods"]) {
    names.push_back(m["name"]);
    EXPECT_GE(m["top1"].get<double>(), 0.0);
    EXPECT_LE(m["top1"].get<double>(), 1.0);
    EXPECT_EQ(m["confusion"].size(), 4u);
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"MLL", "INB", "INB-3", "Random", "All models", "Oracle"}));
  EXPECT_EQ(report["images"], 16);
  EXPECT_EQ(report["models_run"].size(), 3u);  // each model once, shared by every method
  // The oracle is the best single model: no single-model method beats it.
  const double oracle = report["methods"][5]["top1"];
  EXPECT_GE(oracle + 1e-12, report["methods"][1]["top1"].get<double>());
  EXPECT_TRUE(stdfs::exists(dir_ / "out/predictions.csv"));

  const std::string chromium = "/usr/bin/chromium";
  if (!stdfs::exists(chromium)) GTEST_SKIP() << "chromium is not installed";
  r = run_command(chromium +
                      " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
                      "--disable-background-networking --disable-component-update --disable-sync "
                      "--user-data-dir=" +
                      (dir_ / "chromium-profile") + " --dump-dom file://" +
                      (dir_ / "out/report.html") + " 2>/dev/null",
                  dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string& dom = r.out;
  EXPECT_NE(dom.find("id=\"accuracy-chart\""), std::string::npos);
  EXPECT_NE(dom.find("id=\"heatmap\""), std::string::npos);
  EXPECT_NE(dom.find("id=\"chosen\""), std::string::npos);
  EXPECT_NE(dom.find("data-method=\"Oracle\""), std::string::npos);
  std::size_t bars = 0, cells = 0, rows = 0;
  for (std::size_t p = 0; (p = dom.find("class=\"bar", p)) != std::string::npos; ++p) ++bars;
  for (std::size_t p = 0; (p = dom.find("class=\"cell\"", p)) != std::string::npos; ++p) ++cells;
  for (std::size_t p = 0; (p = dom.find("class=\"class-row\"", p)) != std::string::npos; ++p)
    ++rows;
  EXPECT_EQ(bars, 6u);
  EXPECT_EQ(rows, 4u);
  EXPECT_EQ(cells, 3u * report["heatmap"]["nodes"].size());
  EXPECT_GT(cells, 0u);
}

TEST_F(SelectWorldTest, RunLabelsWhatIsMissingThenSelectsAndReuses) {
  write_world_models(dir_ / "models", zoo(), 1, 9);  // a new model, not yet labeled
  const auto r = run_mll("run --store " + store() + " --zoo " + zoo() + " --task " +
                             (dir_ / "task.json") + " --out " + (dir_ / "run") + kFlags,
                         dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("labeled 1, already done 3"), std::string::npos) << r.out;
  EXPECT_EQ(load(dir_ / "run/selection.json")["models"].size(), 4u);
  EXPECT_TRUE(stdfs::exists(dir_ / "run/report.html"));
}

// Several tasks in one call: one folder per task, one table; a rerun reads what exists.
TEST_F(SelectWorldTest, RunOverSeveralTasksWritesOneTableAndSkipsWhatExists) {
  stdfs::create_directories(dir_ / "tasks");
  std::ofstream(dir_ / "tasks/pets.json")
      << R"({"name": "pets", "classes": ["Chihuahua", "golden retriever", "pugs", "goldfish"],
             "domain": "photos of pets", "images": {"dir": "../target"}})";
  const std::string args = "run --store " + store() + " --zoo " + zoo() + " --task " +
                           (dir_ / "tasks") + " --k 1,2 --out " + (dir_ / "grid") + kFlags;
  // A second task on three of the classes: its folder holds only its own classes.
  stdfs::create_directories(dir_ / "dogs_images");
  for (const std::string c : {"Chihuahua", "golden retriever", "pugs"})
    stdfs::copy(dir_ / ("target/" + c), dir_ / ("dogs_images/" + c));
  std::ofstream(dir_ / "tasks/dogs.json")
      << R"({"name": "dogs", "classes": ["Chihuahua", "golden retriever", "pugs"],
             "images": {"dir": "../dogs_images"}})";
  auto r = run_mll(args, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const std::string t : {"dogs", "pets"}) {
    EXPECT_TRUE(stdfs::exists(dir_ / ("grid/" + t + "/report.json"))) << t;
    EXPECT_TRUE(stdfs::exists(dir_ / ("grid/" + t + "/k2/report.json"))) << t;
    // k = 2 runs MLL alone: the baselines come from the first k.
    EXPECT_EQ(load(dir_ / ("grid/" + t + "/k2/report.json"))["methods"].size(), 1u);
  }
  const auto summary = load(dir_ / "grid/summary.json");
  EXPECT_EQ(summary["columns"], (std::vector<std::string>{"MLL k=1", "MLL k=2", "INB", "INB-3",
                                                          "Random", "All models", "Oracle"}));
  ASSERT_EQ(summary["tasks"].size(), 2u);
  EXPECT_EQ(summary["tasks"][0]["name"], "dogs");  // folder order: by file name
  const auto pets = load(dir_ / "grid/pets/report.json");
  EXPECT_DOUBLE_EQ(summary["tasks"][1]["top1"]["MLL k=1"].get<double>(),
                   pets["methods"][0]["top1"].get<double>());
  EXPECT_DOUBLE_EQ(summary["tasks"][1]["top1"]["Oracle"].get<double>(),
                   pets["methods"][5]["top1"].get<double>());
  EXPECT_NE(r.out.find("| task | MLL k=1 | MLL k=2 | INB |"), std::string::npos) << r.out;
  const std::string csv = slurp(dir_ / "grid/summary.csv");
  EXPECT_EQ(csv.rfind("task,MLL k=1,MLL k=2,INB,INB-3,Random,All models,Oracle\ndogs,", 0), 0u)
      << csv;
  const std::string html = slurp(dir_ / "grid/summary.html");
  EXPECT_NE(html.find("id=\"summary-table\""), std::string::npos);
  EXPECT_NE(html.find("href=\"pets/report.html\""), std::string::npos) << html;
  EXPECT_EQ(html.find("http"), std::string::npos);  // self-contained

  // A rerun computes nothing: the stored results make the same table.
  const auto stamp = stdfs::last_write_time(dir_ / "grid/pets/report.json");
  r = run_mll(args, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("2 read from earlier results"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("labeled "), std::string::npos) << r.out;  // no labeling either
  EXPECT_EQ(stdfs::last_write_time(dir_ / "grid/pets/report.json"), stamp);
  EXPECT_EQ(slurp(dir_ / "grid/summary.csv"), csv);
  EXPECT_TRUE(load(dir_ / "grid/summary.json")["tasks"][1]["reused"].get<bool>());

  // --force recomputes (same numbers: nothing changed).
  r = run_mll(args + " --force", dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("0 read from earlier results"), std::string::npos) << r.out;
  EXPECT_NE(stdfs::last_write_time(dir_ / "grid/pets/report.json"), stamp);
  EXPECT_EQ(slurp(dir_ / "grid/summary.csv"), csv);
}

TEST_F(SelectWorldTest, RunRefusesABadTaskInTheListBeforeDoingAnything) {
  write_task("bad.json", R"({"name": "bad", "classes": []})");
  const std::string base = "run --store " + store() + " --zoo " + zoo() + kFlags + " --out ";
  auto r = run_mll(
      base + (dir_ / "out") + " --task " + (dir_ / "task.json") + " --task " + (dir_ / "bad.json"),
      dir_);
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.err.find("mll: error: " + (dir_ / "bad.json")), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("class list is empty"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(stdfs::exists(dir_ / "out"));  // refused before any output or labeling

  r = run_mll(base + (dir_ / "out") + " --task " + (dir_ / "missing.json"), dir_);
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.err.find("missing.json"), std::string::npos) << r.err;

  stdfs::create_directories(dir_ / "empty");
  r = run_mll(base + (dir_ / "out") + " --task " + (dir_ / "empty"), dir_);
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_NE(r.err.find("no task files"), std::string::npos) << r.err;

  // Two tasks of one name would share a folder.
  write_task("again.json", slurp(dir_ / "task.json"));
  r = run_mll(base + (dir_ / "out") + " --task " + (dir_ / "task.json") + " --task " +
                  (dir_ / "again.json"),
              dir_);
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_NE(r.err.find("task name 'pets'"), std::string::npos) << r.err;

  r = run_mll(base + (dir_ / "out") + " --task " + (dir_ / "task.json") + " --k 1,x", dir_);
  EXPECT_EQ(r.exit_code, 64) << r.err;
}

// The export read back by numpy equals what the store API reads.
TEST_F(SelectWorldTest, ExportNpyReadsBackInNumpyAsTheStoreHolds) {
  if (std::system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0)
    GTEST_SKIP() << "python3-numpy is not installed";
  const auto st = store::Store::open(store(), store::Store::Mode::kRead);
  std::ofstream(dir_ / "npy2raw.py")
      << "import csv, sys, numpy as np\n"
         "out, dtype = sys.argv[1], sys.argv[2]\n"
         "for name in sys.argv[3:]:\n"
         "    a = np.load(out + '/' + name + '.npy')\n"
         "    assert a.dtype == np.dtype(dtype), a.dtype\n"
         "    assert a.ndim == 2 and a.flags['C_CONTIGUOUS']\n"
         "    a.astype('<f4').tofile(out + '/' + name + '.raw')\n"
         "    print(name, a.shape[0], a.shape[1])\n"
         "for name in ('images', 'captions'):\n"
         "    rows = list(csv.DictReader(open(out + '/' + name + '.csv', newline='')))\n"
         "    assert [int(r['row']) for r in rows] == list(range(len(rows)))\n"
         "    print(name + '.csv', len(rows))\n";
  for (const std::string dtype : {"float32", "float16"}) {
    const std::string out = dir_ / ("export-" + dtype);
    const std::string ids = ids_[0] + "," + ids_[2];
    auto r = run_mll("store export --format npy --store " + store() + " --models " + ids +
                         " --dtype " + dtype + " --out " + out,
                     dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = run_command("/usr/bin/python3 " + (dir_ / "npy2raw.py") + " " + out + " " + dtype + " " +
                        ids_[0] + "/images " + ids_[0] + "/captions " + ids_[2] + "/images " +
                        ids_[2] + "/captions",
                    dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto images = st.probe().image_count(), captions = st.captions().size();
    EXPECT_NE(r.out.find("images.csv " + std::to_string(images)), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("captions.csv " + std::to_string(captions)), std::string::npos) << r.out;
    for (const auto& id : {ids_[0], ids_[2]}) {
      const auto expect_equal = [&](const Matrix& m, const std::string& name) {
        const std::string raw = slurp(out + "/" + id + "/" + name + ".raw");
        ASSERT_EQ(raw.size(), m.values.size() * sizeof(float)) << id << " " << name;
        // Exact: the store keeps float16, which float32 and float16 both hold without loss.
        EXPECT_EQ(std::memcmp(raw.data(), m.values.data(), raw.size()), 0) << id << " " << name;
      };
      expect_equal(st.read_image_embeddings(id, 0, static_cast<std::int64_t>(images)), "images");
      expect_equal(st.read_text_embeddings(id), "captions");
    }
    // Metadata rows name the probe image paths in row order.
    const std::string csv = slurp(out + "/images.csv");
    EXPECT_NE(csv.find("\n0," + st.probe().path_of(0) + ","), std::string::npos)
        << csv.substr(0, 300);
    EXPECT_EQ(load(out + "/export.json")["models"].size(), 2u);
  }

  // An unknown model: one line, exit 64, nothing written; an existing export needs --force.
  auto r =
      run_mll("store export --store " + store() + " --models ghost --out " + (dir_ / "x"), dir_);
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_NE(r.err.find("no model 'ghost'"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(stdfs::exists(dir_ / "x"));
  r = run_mll("store export --store " + store() + " --out " + (dir_ / "export-float32"), dir_);
  EXPECT_EQ(r.exit_code, 64) << r.err;
  EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
  r = run_mll("store export --store " + store() + " --dtype float64 --out " + (dir_ / "y"), dir_);
  EXPECT_EQ(r.exit_code, 64) << r.err;
}

TEST_F(SelectWorldTest, BadInputsAreClearErrorsOrWarnings) {
  const auto expect_error = [&](const std::string& task, const std::string& text, int code,
                                const std::string& needle) {
    write_task(task, text);
    const auto r =
        select("--task " + (dir_ / task) + " --match-models none --out " + (dir_ / "x.json"));
    EXPECT_EQ(r.exit_code, code) << task << ": " << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(task), std::string::npos) << r.err;
  };
  expect_error("empty.json", R"({"name": "e", "classes": []})", 65, "class list is empty");
  expect_error("dup.json", R"({"name": "d", "classes": ["pug", "pug"]})", 65,
               "duplicate class name 'pug'");
  expect_error("caps.json", R"({"name": "c", "classes": ["pug"], "captions_file": "nope.json"})",
               65, "nope.json");

  // A class that matches nothing: a warning in the output, not an error and not dropped.
  write_task("nomatch.json", R"({"name": "n", "classes": ["pug", "zorblax quux"]})");
  auto r = select("--task " + (dir_ / "nomatch.json") + " --zoo " + zoo() +
                  " --min-match 0.999 --out " + (dir_ / "n.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("'zorblax quux' matches nothing well"), std::string::npos) << r.err;
  const auto sel = load(dir_ / "n.json");
  EXPECT_TRUE(sel["classes"][0]["warnings"].empty());
  EXPECT_EQ(sel["classes"][1]["warnings"].size(), 1u);
  EXPECT_EQ(sel["classes"][1]["chosen"].size(), 1u);

  // Images of a class not in the task; missing images.
  const std::string reuse_args = " --zoo " + zoo() + " --out " + (dir_ / "o") + kFlags;
  r = select("--task " + (dir_ / "task.json") + " --match-models none --out " + (dir_ / "s.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  stdfs::create_directories(dir_ / "target/cat");
  r = run_mll("reuse --store " + store() + " --task " + (dir_ / "task.json") + " --selection " +
                  (dir_ / "s.json") + reuse_args,
              dir_);
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.err.find("folder 'cat' is not a class"), std::string::npos) << r.err;
  stdfs::remove_all(dir_ / "target/cat");
  write_task("nodir.json", R"({"name": "pets", "classes": ["Chihuahua", "golden retriever",
      "pugs", "goldfish"], "images": {"dir": "missing"}})");
  r = run_mll("reuse --store " + store() + " --task " + (dir_ / "nodir.json") + " --selection " +
                  (dir_ / "s.json") + reuse_args,
              dir_);
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  std::ofstream(dir_ / "m.tsv") << "target/pugs/img_3_0.png\tpugs\ntarget/pugs/img_3_1.png\tcat\n";
  write_task("manifest.json", R"({"name": "pets", "classes": ["Chihuahua", "golden retriever",
      "pugs", "goldfish"], "images": {"manifest": "m.tsv"}})");
  r = run_mll("reuse --store " + store() + " --task " + (dir_ / "manifest.json") + " --selection " +
                  (dir_ / "s.json") + reuse_args,
              dir_);
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.err.find("m.tsv:2: class 'cat'"), std::string::npos) << r.err;

  // A store missing a model the selection names.
  auto doc = load(dir_ / "s.json");
  doc["classes"][0]["chosen"][0]["model"] = "ghost";
  std::ofstream(dir_ / "ghost.json") << doc.dump();
  r = run_mll("reuse --store " + store() + " --task " + (dir_ / "task.json") + " --selection " +
                  (dir_ / "ghost.json") + reuse_args,
              dir_);
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.err.find("model 'ghost'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("store.h5"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace mll::test

namespace mll::test {
namespace {

// Store integrity, case 5: a store on a read-only file system (a shared, published store) serves
// selections: the selection goes where --out says, with a warning that the store keeps no copy;
// and a store moved under another name (index and folder together) verifies and serves.
TEST_F(SelectWorldTest, ReadOnlyAndRenamedStoresServeSelections) {
  const std::string ro = dir_ / "ro";
  stdfs::create_directories(ro);
  if (std::system(("mount -t tmpfs -o size=64m tmpfs " + ro + " 2>/dev/null").c_str()) != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  }
  stdfs::copy_file(store(), ro + "/shared.h5");
  stdfs::copy(store() + ".d", ro + "/shared.h5.d", stdfs::copy_options::recursive);
  ASSERT_EQ(std::system(("mount -o remount,ro " + ro).c_str()), 0);
  const auto r = run_mll("select --store " + ro + "/shared.h5 --task " + (dir_ / "task.json") +
                             " --out " + (dir_ / "ro-selection.json"),
                         dir_);
  const auto towers = run_mll("select --store " + ro + "/shared.h5 --task " + (dir_ / "task.json") +
                                  " --zoo " + zoo() + " --out " + (dir_ / "ro-towers.json"),
                              dir_);
  std::system(("umount " + ro).c_str());
  // Nor can it keep the class texts' vectors: that only costs time.
  ASSERT_EQ(towers.exit_code, 0) << towers.err;
  EXPECT_NE(towers.err.find("class-text embeddings not cached"), std::string::npos) << towers.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(stdfs::exists(dir_ / "ro-selection.json"));
  EXPECT_NE(r.err.find("the store keeps no copy of this selection"), std::string::npos) << r.err;

  stdfs::rename(store(), dir_ / "renamed.h5");
  stdfs::rename(store() + ".d", dir_ / "renamed.h5.d");
  auto v = run_mll("store verify " + (dir_ / "renamed.h5"), dir_);
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  const auto s = run_mll("select --store " + (dir_ / "renamed.h5") + " --task " +
                             (dir_ / "task.json") + " --out " + (dir_ / "renamed-selection.json"),
                         dir_);
  EXPECT_EQ(s.exit_code, 0) << s.err;
  const auto renamed = load(dir_ / "renamed-selection.json"),
             shared = load(dir_ / "ro-selection.json");
  EXPECT_EQ(renamed["classes"], shared["classes"]);
  EXPECT_EQ(renamed["scores"], shared["scores"]);
  // A writer open points the index's links (for h5py and h5dump) at the new folder.
  const auto w = run_mll("label --store " + (dir_ / "renamed.h5") + " --zoo " + zoo() + kFlags +
                             " --batch 8 --unit 16 --no-progress",
                         dir_);
  EXPECT_EQ(w.exit_code, 0) << w.err;
  v = run_mll("store verify " + (dir_ / "renamed.h5"), dir_);
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_EQ(v.out.find("old name"), std::string::npos) << v.out;
}

}  // namespace
}  // namespace mll::test

namespace mll::test {
namespace {

// selection.json without its `timing` object: the part two runs of one selection must share.
std::string without_timing(const std::string& path) {
  auto doc = json::parse(slurp(path));
  doc.erase("timing");
  return doc.dump(1);
}

// Matching as it was before the default rule and the cache: every done model embeds each
// class's texts in one batch; the cosines of the mean direction with the stored caption
// embeddings are averaged over the models.
double all_model_cosine(const std::string& store_path, const std::string& zoo_path,
                        const std::vector<std::string>& texts, const std::string& wnid) {
  const auto s = store::Store::open(store_path, store::Store::Mode::kRead);
  const auto manifest = zoo::ZooManifest::load(zoo_path);
  const auto v = static_cast<std::size_t>(s.graph().index_of(wnid));
  double sum = 0;
  int models = 0;
  for (const auto& r : s.models()) {
    const auto spec = manifest.load_spec(r.id);
    const zoo::Model model(spec);
    const auto tokenizer = feed::make_tokenizer(spec);
    const auto ids = tokenizer->encode_batch(texts);
    const auto e =
        model.encode_text(ids.data(), static_cast<int>(texts.size()), tokenizer->context_length());
    std::vector<double> mean(static_cast<std::size_t>(e.cols), 0.0);
    for (std::int64_t i = 0; i < e.rows; ++i) {
      for (std::int64_t t = 0; t < e.cols; ++t) mean[static_cast<std::size_t>(t)] += e.row(i)[t];
    }
    double norm = 0;
    for (const double x : mean) norm += x * x;
    const Matrix text = s.read_text_embeddings(r.id);
    const float* row = text.row(s.node_caption()[v]);
    double dot = 0;
    for (std::int64_t t = 0; t < e.cols; ++t) dot += mean[static_cast<std::size_t>(t)] * row[t];
    sum += dot / std::sqrt(norm);
    ++models;
  }
  return sum / models;
}

TEST_F(SelectWorldTest, DefaultMatchingTakesTheRulesTowerAndAllIsTheOldAverage) {
  const std::string task = " --task " + (dir_ / "task.json") + " --zoo " + zoo();
  // No sidecar has imagenet_top1 and all have the same params: the smallest id.
  auto r = select(task + " --out " + (dir_ / "default.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(load(dir_ / "default.json")["match_models"], json({"small-0"}));
  EXPECT_EQ(load(dir_ / "default.json")["timing"]["texts_embedded"], 4);
  // The highest imagenet_top1 wins, whatever its id; best:2 adds the next by the rule.
  auto sidecar = load(dir_ / "models/small-2.json");
  sidecar["imagenet_top1"] = 0.5;
  std::ofstream(dir_ / "models/small-2.json") << sidecar.dump(1);
  r = select(task + " --out " + (dir_ / "best.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(load(dir_ / "best.json")["match_models"], json({"small-2"}));
  r = select(task + " --match-models best:2 --out " + (dir_ / "best2.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(load(dir_ / "best2.json")["match_models"], json({"small-2", "small-0"}));
  r = select(task + " --match-models best:0 --out " + (dir_ / "x.json"));
  EXPECT_EQ(r.exit_code, 64) << r.err;

  // all: every done model, averaged, as matching was before the rule (cosines of the old
  // per-class computation), and the same as naming them all.
  r = select(task + " --match-models all --out " + (dir_ / "all.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto all = load(dir_ / "all.json");
  EXPECT_EQ(all["match_models"], json({"small-0", "small-1", "small-2"}));
  r = select(task + " --match-models small-0,small-1,small-2 --text-cache none --out " +
             (dir_ / "listed.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto listed = load(dir_ / "listed.json");
  EXPECT_EQ(all["classes"], listed["classes"]);
  EXPECT_EQ(all["scores"], listed["scores"]);
  for (const auto& c : all["classes"]) {
    const auto texts = c["texts"].get<std::vector<std::string>>();
    for (const auto& n : c["matched_nodes"]) {
      EXPECT_NEAR(n["cosine"].get<double>(),
                  all_model_cosine(store(), zoo(), texts, n["wnid"].get<std::string>()), 1e-6)
          << c["name"] << " " << n["wnid"];
    }
  }
}

TEST_F(SelectWorldTest, TheTextCacheGivesTheSameSelectionWithoutLoadingAModel) {
  const std::string args = " --task " + (dir_ / "task.json") + " --zoo " + zoo() +
                           " --match-models all --out " + (dir_ / "s.json");
  const std::string cache = store() + ".text-cache";
  auto r = select(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string miss = without_timing(dir_ / "s.json");
  EXPECT_EQ(load(dir_ / "s.json")["timing"]["texts_embedded"], 12);  // 4 texts x 3 towers
  for (const auto& id : ids_) EXPECT_TRUE(stdfs::exists(cache + "/" + id + ".textcache")) << id;

  // A hit: no tower runs (the model files could be gone), the selection is the same bytes.
  for (const auto& id : ids_) stdfs::rename(dir_ / ("models/" + id + ".pt"), dir_ / (id + ".pt"));
  r = select(args);
  for (const auto& id : ids_) stdfs::rename(dir_ / (id + ".pt"), dir_ / ("models/" + id + ".pt"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(load(dir_ / "s.json")["timing"]["texts_cached"], 12);
  EXPECT_EQ(load(dir_ / "s.json")["timing"]["texts_embedded"], 0);
  EXPECT_EQ(without_timing(dir_ / "s.json"), miss);

  // A damaged cache file (a flipped byte, a truncation) is ignored with a warning naming it,
  // the selection does not change, and the file is rewritten.
  const std::string file = cache + "/small-1.textcache";
  std::string bytes = slurp(file);
  bytes[bytes.size() - 9] = static_cast<char>(bytes[bytes.size() - 9] ^ 0x01);
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  r = select(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find(file + ": corrupt text cache (checksum mismatch)"), std::string::npos)
      << r.err;
  EXPECT_EQ(load(dir_ / "s.json")["timing"]["texts_embedded"], 4);
  EXPECT_EQ(without_timing(dir_ / "s.json"), miss);
  stdfs::resize_file(file, stdfs::file_size(file) / 2);
  r = select(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("corrupt text cache"), std::string::npos) << r.err;
  EXPECT_EQ(without_timing(dir_ / "s.json"), miss);
  r = select(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("corrupt"), std::string::npos) << r.err;
  EXPECT_EQ(load(dir_ / "s.json")["timing"]["texts_embedded"], 0);

  // A cache that cannot be written only costs time; none caches nothing.
  std::ofstream(dir_ / "plain-file") << "x";
  r = select(args + " --text-cache " + (dir_ / "plain-file/cache"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("class-text embeddings not cached"), std::string::npos) << r.err;
  EXPECT_EQ(without_timing(dir_ / "s.json"), miss);
  r = select(args + " --text-cache none");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(load(dir_ / "s.json")["timing"]["texts_embedded"], 12);
  EXPECT_EQ(without_timing(dir_ / "s.json"), miss);
}

TEST_F(SelectWorldTest, AModelRelabeledFromAnotherFileDoesNotReuseItsVectors) {
  const std::string args =
      " --task " + (dir_ / "task.json") + " --zoo " + zoo() + " --out " + (dir_ / "s.json");
  auto r = select(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(load(dir_ / "s.json")["match_models"], json({"small-0"}));
  r = select(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(load(dir_ / "s.json")["timing"]["texts_embedded"], 0);
  // small-0 becomes another model (other weights, same id): removed, written, labeled again.
  r = run_mll("store rm-model small-0 --store " + store(), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  zoo::AuthoredModelParams params;
  params.kind = "small";
  params.seed = 7;
  params.id = "small-0";
  params.embed_dim = 16;
  params.image_size = 32;
  zoo::write_authored_model(params, dir_ / "models");
  r = run_mll("label --store " + store() + " --zoo " + zoo() + kFlags +
                  " --batch 8 --unit 16 --no-progress",
              dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = select(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(load(dir_ / "s.json")["timing"]["texts_cached"], 0);
  EXPECT_EQ(load(dir_ / "s.json")["timing"]["texts_embedded"], 4);
  r = select(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(load(dir_ / "s.json")["timing"]["texts_embedded"], 0);
}

// A model file replaced after labeling (here by another model's file of the same size) is not
// run next to the labels it did not make: matching that would embed texts with it, and reuse,
// refuse it with a data error naming the file; texts already cached from the labeled file
// still serve, and restoring the file serves again.
TEST_F(SelectWorldTest, AModelFileChangedSinceLabelingIsRefused) {
  const std::string sel = dir_ / "selection.json";
  const std::string args = " --task " + (dir_ / "task.json") + " --zoo " + zoo() + " --out " + sel;
  auto r = select(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(load(sel)["match_models"], json({"small-0"}));
  const std::string model = dir_ / "models/small-0.pt";
  const std::string other = dir_ / "models/small-1.pt";
  ASSERT_EQ(stdfs::file_size(model), stdfs::file_size(other));
  stdfs::copy_file(model, dir_ / "small-0.pt.orig");
  stdfs::copy_file(other, model, stdfs::copy_options::overwrite_existing);

  const std::string digests = slurp(store() + ".digests");
  r = select(args + " --text-cache none");
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_EQ(slurp(store() + ".digests"), digests);  // the replaced file's digest not remembered
  EXPECT_NE(r.err.find("model 'small-0': " + model + " is not the file it was labeled from"),
            std::string::npos)
      << r.err;
  r = select(args);  // every text cached from the labeled file: no tower runs
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(load(sel)["timing"]["texts_embedded"], 0);
  r = run_mll("reuse --store " + store() + " --task " + (dir_ / "task.json") + " --selection " +
                  sel + " --zoo " + zoo() + " --out " + (dir_ / "out") + kFlags,
              dir_);
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.err.find("is not the file it was labeled from"), std::string::npos) << r.err;

  stdfs::copy_file(dir_ / "small-0.pt.orig", model, stdfs::copy_options::overwrite_existing);
  r = select(args + " --text-cache none");
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

// A remembered digest never refuses a good file: one that disagrees with the store (rewritten
// with a valid checksum) is checked by hashing the file, and the file's own digest is
// remembered again.
TEST_F(SelectWorldTest, AWrongRememberedDigestIsCheckedByHashing) {
  const std::string path = store() + ".digests";
  const std::string good = slurp(path);
  const auto line = good.find('\n') + 1;  // after the header: the first file's line
  const auto end = good.find('\n', line);
  ASSERT_NE(good.substr(line, end - line).find("small-0.pt"), std::string::npos) << good;
  std::ofstream(path, std::ios::trunc) << with_wrong_first_digest(good);
  const auto r = select(" --task " + (dir_ / "task.json") + " --zoo " + zoo() + " --out " +
                        (dir_ / "s.json") + " --text-cache none");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(slurp(path), good);
}

}  // namespace
}  // namespace mll::test
