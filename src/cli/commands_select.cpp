// mll select | reuse | run
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <thread>

#include "command.hpp"
#include "mll/archive/webdataset.hpp"
#include "mll/core/cpus.hpp"
#include "mll/core/error.hpp"
#include "mll/core/log.hpp"
#include "mll/core/signals.hpp"
#include "mll/distributed/label.hpp"
#include "mll/graph/wordnet.hpp"
#include "mll/label/job.hpp"
#include "mll/reuse/reuse.hpp"
#include "mll/reuse/summary.hpp"
#include "mll/select/match.hpp"
#include "mll/select/selection_file.hpp"
#include "mll/select/text_cache.hpp"
#include "mll/store/store.hpp"
#include "mll/zoo/model_spec.hpp"
#include "options.hpp"

namespace mll::cli {
namespace {

// `k_grid`: --k takes a comma-separated list (mll run's grid over k) instead of one number.
void select_only_options(po::options_description& d, bool k_grid = false) {
  if (k_grid) {
    d.add_options()("k", po::value<std::string>()->default_value("1")->value_name("K[,K...]"),
                    "models per class; a list runs each (the first with the baselines, the others "
                    "MLL only, in k<K>/)");
  } else {
    d.add_options()("k", po::value<int>()->default_value(1)->value_name("K"), "models per class");
  }
  d.add_options()("alpha", real_value(0.7)->value_name("A"),
                  "weight of the class's own score against the mean over classes (Eq. 7)")(
      "metric", po::value<std::string>()->default_value("precision")->value_name("M"),
      "per-node score: precision, recall or f1")(
      "mix", po::value<std::string>()->default_value("all")->value_name("all|others"),
      "mean over all classes (paper) or over the other classes (authors' code)")(
      "models", po::value<std::string>()->value_name("ID,..."),
      "candidate models (default: every done model of the store)")(
      "match-models", po::value<std::string>()->default_value("best")->value_name("RULE"),
      "text towers for matching: best (the done zoo model with the highest imagenet_top1, then "
      "params, then id), best:N (the N first by that rule), all (every done zoo model, "
      "averaged), ID,... or none (WordNet only)")(
      "text-cache", po::value<std::string>()->value_name("DIR|none"),
      "class-text embedding cache (default: STORE.text-cache; none: embed every time)")(
      "matches", po::value<std::string>()->value_name("FILE"),
      "reuse the matched nodes of a selection or matches file instead of matching")(
      "min-match", real_value(0.5)->value_name("S"),
      "warn about a class whose best match score is below S (and has no lemma match)")(
      "temperature", real_value(0.05)->value_name("T"), "softmax temperature of the node weights");
}

void common_options(po::options_description& d) {
  d.add_options()("store,s",
                  po::value<std::string>()->default_value("store.h5")->value_name("FILE"),
                  "label store")("task,t", po::value<std::string>()->required()->value_name("FILE"),
                                 "task spec (docs/tasks.md)");
}

// --match-models: "best" (the default rule), "best:N", "all", "none" or a list of ids.
void apply_match_models(const std::string& value, select::MatchOptions& options) {
  if (value == "none") {
    options.text = false;
  } else if (value == "all") {
    options.all_models = true;
  } else if (value == "best") {
    options.best = 1;
  } else if (value.rfind("best:", 0) == 0) {
    const std::string count = value.substr(5);
    if (count.empty() || count.size() > 4 ||
        count.find_first_not_of("0123456789") != std::string::npos || std::stoi(count) < 1) {
      MLL_THROW(UsageError, "--match-models ", value, ": best:N needs a count N >= 1");
    }
    options.best = static_cast<std::size_t>(std::stoi(count));
  } else {
    options.models = split_ids(value);
    if (options.models.empty()) MLL_THROW(UsageError, "--match-models is empty");
  }
}

struct SelectOutcome {
  select::Task task;
  std::string json;
  select::SelectionResult result;
  select::MatchResult match;
};

// Matching and selection of the task in `task_path` with `k` models per class against an open
// store; writes `out` and the store's copy. Throws what load_task, matching and selection throw,
// UsageError for a bad option.
SelectOutcome run_select(const po::variables_map& vm, const store::Store& store,
                         const std::string& task_path, int k, const std::string& out) {
  SelectOutcome o;
  o.task = select::load_task(task_path);
  std::vector<zoo::ModelSpec> specs;
  std::vector<std::string> order;
  if (vm.count("zoo")) {
    const auto manifest = zoo::ZooManifest::load(vm["zoo"].as<std::string>());
    for (const auto& e : manifest.entries()) {
      order.push_back(e.id);
      const auto record = store.find_model(e.id);
      if (record && record->status == store::ModelStatus::kDone)
        specs.push_back(manifest.load_spec(e.id));
    }
  }
  if (vm.count("matches")) {
    o.match = select::read_matches(vm["matches"].as<std::string>(), store, o.task);
  } else {
    select::MatchOptions mo;
    apply_match_models(vm.count("match-models") ? vm["match-models"].as<std::string>() : "best",
                       mo);
    const std::string cache =
        vm.count("text-cache") ? vm["text-cache"].as<std::string>() : std::string();
    mo.text_cache = cache.empty() ? select::default_text_cache_dir(store.path())
                                  : (cache == "none" ? std::string() : cache);
    if (vm.count("threads")) {
      if (vm["threads"].as<int>() < 0) MLL_THROW(UsageError, "--threads must be >= 0");
      mo.threads = vm["threads"].as<int>();
    }
    mo.min_score = vm["min-match"].as<double>();
    mo.temperature = vm["temperature"].as<double>();
    std::unique_ptr<graph::WordNet> wordnet;
    try {
      wordnet =
          std::make_unique<graph::WordNet>(graph::WordNet::load(graph::WordNet::default_dir()));
    } catch (const Error& e) {
      log::warn("WordNet is not available (", e.what(), "): lemma matches use the graph only");
    }
    o.match = select::match_task(store, o.task, specs, wordnet.get(), mo);
  }
  std::vector<std::vector<std::int32_t>> class_nodes;
  std::vector<std::vector<double>> weights;
  for (const auto& c : o.match.classes) {
    class_nodes.emplace_back();
    weights.emplace_back();
    for (const auto& n : c.nodes) {
      class_nodes.back().push_back(n.node);
      weights.back().push_back(n.weight);
    }
  }
  const auto nodes = select::task_nodes(store, class_nodes, weights);
  select::SelectOptions so;
  if (vm.count("threads")) so.threads = vm["threads"].as<int>();
  if (k < 1) MLL_THROW(UsageError, "--k must be at least 1");
  so.k = static_cast<std::size_t>(k);
  so.alpha = vm["alpha"].as<double>();
  so.metric = select::parse_metric(vm["metric"].as<std::string>());
  so.mix = select::parse_mix(vm["mix"].as<std::string>());
  const auto models = select::candidate_models(
      store, order, split_ids(vm.count("models") ? vm["models"].as<std::string>() : ""));
  if (so.k > models.size() && !models.empty()) {
    log::warn("--k ", so.k, " exceeds the ", models.size(),
              " candidate models: every class gets all");
  }
  o.result = select::select_models(store, models, nodes, so);
  o.json = select::selection_json(store, o.task, o.match, nodes, o.result, so);
  select::write_text_atomic(out, o.json);
  // The store's own copy is a convenience: a store on a read-only file system (or another
  // user's) still serves selections, written where --out says.
  const auto stored = select::stored_selection_path(store.path(), o.task.name);
  try {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(stored).parent_path(), ec);
    if (ec)
      MLL_THROW(IoError, std::filesystem::path(stored).parent_path().string(), ": ", ec.message());
    select::write_text_atomic(stored, o.json);
  } catch (const Error& e) {
    log::warn("the store keeps no copy of this selection (", e.what(), "); it is in ", out);
  }
  for (const auto& w : o.match.warnings) std::cerr << "warning: " << w << "\n";
  for (const auto& c : o.match.classes) {
    for (const auto& w : c.warnings) std::cerr << "warning: " << w << "\n";
  }
  return o;
}

void print_selection(const SelectOutcome& o, const store::Store& store, const std::string& out) {
  std::cout << "selection for task " << o.task.name << " (" << o.task.classes.size() << " classes, "
            << o.result.models.size() << " candidate models) -> " << out << "\n";
  for (std::size_t y = 0; y < o.task.classes.size(); ++y) {
    std::cout << "  " << o.task.classes[y] << ":";
    for (const auto& c : o.result.chosen[y]) std::cout << " " << c.model << " (" << c.score << ")";
    std::cout << "  <-";
    for (const auto& n : o.match.classes[y].nodes) {
      std::cout << " " << store.graph().node(static_cast<std::size_t>(n.node)).name << ":"
                << n.weight;
    }
    if (!o.match.classes[y].warnings.empty()) std::cout << "  [warning]";
    std::cout << "\n";
  }
  std::cout << "  time: match " << o.match.seconds << " s (texts: " << o.match.texts_cached
            << " cached, " << o.match.texts_embedded << " embedded), read " << o.result.io_seconds
            << " s, compute " << o.result.compute_seconds << " s\n";
}

void select_options(po::options_description& d, po::positional_options_description&) {
  common_options(d);
  select_only_options(d);
  d.add_options()("zoo,z", po::value<std::string>()->value_name("FILE"),
                  "zoo manifest: text towers for matching, and the model order ties break by")(
      "out,o", po::value<std::string>()->default_value("selection.json")->value_name("FILE"),
      "selection file (also stored as STORE.d/selections/TASK.json)")(
      "threads", po::value<int>()->default_value(0)->value_name("N"),
      "CPU threads for the text tower and the scores (0: the CPUs this process may use)");
}

int select_run(const po::variables_map& vm, distributed::Session& session) {
  const auto store = store::Store::open(vm["store"].as<std::string>(), store::Store::Mode::kRead);
  const std::string out = vm["out"].as<std::string>();
  const auto o = run_select(vm, store, vm["task"].as<std::string>(), vm["k"].as<int>(), out);
  print_selection(o, store, out);
  return 0;
}

void reuse_only_options(po::options_description& d) {
  d.add_options()("templates", po::value<std::string>()->value_name("FILE"),
                  "prompt templates, one per line with {class} (default: the task shards' "
                  "zeroshot_classification_templates.txt if any, else 'a photo of a {class}.')")(
      "no-baselines", po::bool_switch(), "run only the selected models (no INB/random/all/oracle)")(
      "seeds", po::value<int>()->default_value(5)->value_name("N"), "random-selection seeds")(
      "batch", po::value<int>()->default_value(32)->value_name("IMAGES"),
      "images per forward pass")("decode-threads",
                                 po::value<int>()->default_value(0)->value_name("N"),
                                 "background decode threads (0: one per core)");
  add_device_options(d);
}

reuse::ReuseOptions reuse_options(const po::variables_map& vm) {
  reuse::ReuseOptions options;
  options.run = run_options(vm);
  if (vm.count("templates"))
    options.templates = reuse::read_templates(vm["templates"].as<std::string>());
  options.baselines = !vm["no-baselines"].as<bool>();
  options.random_seeds = vm["seeds"].as<int>();
  options.batch = vm["batch"].as<int>();
  const int cores = usable_cpu_count();
  options.decode_threads =
      vm["decode-threads"].as<int>() > 0 ? vm["decode-threads"].as<int>() : cores;
  return options;
}

// `baselines`: false runs the selected models only, whatever --no-baselines says.
int do_reuse(const store::Store& store, const select::Task& task,
             const select::SelectionFile& selection, const po::variables_map& vm,
             const std::string& dir, bool baselines = true) {
  const auto manifest = zoo::ZooManifest::load(vm["zoo"].as<std::string>());
  auto options = reuse_options(vm);
  options.baselines = options.baselines && baselines;
  if (!vm.count("templates") && !task.images_shards.empty()) {
    // CLIP_benchmark's layout carries the dataset's own zero-shot templates beside the shards.
    const auto file =
        archive::find_side_file(task.images_shards, "zeroshot_classification_templates.txt");
    if (!file.empty()) {
      options.templates = reuse::read_templates(file);
      log::info("prompt templates: ", options.templates.size(), " from ", file);
    }
  }
  const auto report = reuse::run_reuse(store, task, selection, manifest, options);
  reuse::write_report(report, dir);
  std::cout << reuse::markdown_summary(report) << "\nreport: " << dir << "/report.html\n";
  return 0;
}

void reuse_cmd_options(po::options_description& d, po::positional_options_description&) {
  common_options(d);
  d.add_options()("selection",
                  po::value<std::string>()->default_value("selection.json")->value_name("FILE"),
                  "selection file written by mll select")(
      "zoo,z", po::value<std::string>()->default_value("zoo.json")->value_name("FILE"),
      "zoo manifest (the model files)")(
      "out,o", po::value<std::string>()->required()->value_name("DIR"), "output folder");
  reuse_only_options(d);
}

int reuse_run(const po::variables_map& vm, distributed::Session& session) {
  const auto store = store::Store::open(vm["store"].as<std::string>(), store::Store::Mode::kRead);
  const auto task = select::load_task(vm["task"].as<std::string>());
  const auto selection = select::read_selection(vm["selection"].as<std::string>());
  return do_reuse(store, task, selection, vm, vm["out"].as<std::string>());
}

void run_cmd_options(po::options_description& d, po::positional_options_description&) {
  d.add_options()("store,s",
                  po::value<std::string>()->default_value("store.h5")->value_name("FILE"),
                  "label store")(
      "task,t",
      po::value<std::vector<std::string>>()->required()->composing()->value_name("FILE|DIR"),
      "task spec (docs/tasks.md), or a folder whose *.json files are task specs; repeatable")(
      "zoo,z", po::value<std::string>()->default_value("zoo.json")->value_name("FILE"),
      "zoo manifest: models to label (what is missing), text towers, model files")(
      "out,o", po::value<std::string>()->required()->value_name("DIR"),
      "output folder: per task (in DIR itself for one task, DIR/<task> for several) "
      "selection.json, "
      "report.json, report.html, predictions.csv; summary.csv, summary.json, summary.html")(
      "force", po::bool_switch(),
      "recompute tasks whose results already exist in the output folder");
  select_only_options(d, /*k_grid=*/true);
  reuse_only_options(d);
}

// --k of mll run: "1" or "1,3": distinct values >= 1, in the order given.
std::vector<int> parse_k_grid(const std::string& text) {
  std::vector<int> ks;
  for (const auto& item : split_ids(text)) {
    if (item.size() > 4 || item.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(item) < 1) {
      MLL_THROW(UsageError, "--k ", text, ": '", item, "' is not a count >= 1");
    }
    const int k = std::stoi(item);
    if (std::find(ks.begin(), ks.end(), k) != ks.end())
      MLL_THROW(UsageError, "--k ", text, ": ", k, " is given twice");
    ks.push_back(k);
  }
  if (ks.empty()) MLL_THROW(UsageError, "--k is empty");
  return ks;
}

// The task files --task names: files as given, folders as their *.json files in name order.
// Throws UsageError for a folder without task files.
std::vector<std::string> task_files(const std::vector<std::string>& args) {
  std::vector<std::string> files;
  for (const auto& arg : args) {
    std::error_code ec;
    if (!std::filesystem::is_directory(arg, ec)) {
      files.push_back(arg);  // load_task names it if it is missing
      continue;
    }
    std::vector<std::string> found;
    for (const auto& entry : std::filesystem::directory_iterator(arg, ec)) {
      if (entry.path().extension() == ".json" && !entry.is_directory())
        found.push_back(entry.path().string());
    }
    if (ec) MLL_THROW(UsageError, arg, ": cannot list the task folder: ", ec.message());
    if (found.empty()) MLL_THROW(UsageError, arg, ": no task files (*.json) in the folder");
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
  }
  return files;
}

// One task of a run and where its results go: the first k in `dir`, each further k in dir/k<K>.
struct RunTask {
  std::string file;
  select::Task task;
  std::string dir;

  std::string k_dir(const std::vector<int>& ks, std::size_t i) const {
    return i == 0 ? dir : dir + "/k" + std::to_string(ks[i]);
  }
  // Whether every k has its result (report.json, or selection.json for a task without images).
  bool done(const std::vector<int>& ks) const {
    const std::string result = task.has_images() ? "/report.json" : "/selection.json";
    for (std::size_t i = 0; i < ks.size(); ++i) {
      if (!std::filesystem::exists(k_dir(ks, i) + result)) return false;
    }
    return true;
  }
  reuse::TaskReports reports(const std::vector<int>& ks, bool reused) const {
    reuse::TaskReports r;
    r.name = task.name;
    r.reused = reused;
    if (!task.has_images()) return r;
    for (std::size_t i = 0; i < ks.size(); ++i) r.reports.push_back(k_dir(ks, i) + "/report.json");
    r.html = dir + "/report.html";
    return r;
  }
};

// Loads every task before anything runs, so a bad file in the list fails the run at once (its
// DataError names it). Several tasks get a folder each, named by the task: UsageError when two
// share a name.
std::vector<RunTask> load_run_tasks(const std::vector<std::string>& args, const std::string& dir) {
  std::vector<RunTask> tasks;
  for (const auto& file : task_files(args)) tasks.push_back({file, select::load_task(file), dir});
  if (tasks.size() < 2) return tasks;
  std::map<std::string, std::string> seen;
  for (auto& t : tasks) {
    const auto [it, fresh] = seen.emplace(t.task.name, t.file);
    if (!fresh) {
      MLL_THROW(UsageError, t.file, ": task name '", t.task.name, "' is also the name of ",
                it->second, " (each task's results go to a folder named after it)");
    }
    t.dir = dir + "/" + t.task.name;
  }
  return tasks;
}

// Selection and (when the task has images) reuse of one task at every k of the grid.
void run_task(const po::variables_map& vm, const store::Store& store, const RunTask& t,
              const std::vector<int>& ks) {
  for (std::size_t i = 0; i < ks.size(); ++i) {
    const std::string dir = t.k_dir(ks, i);
    std::filesystem::create_directories(dir);
    const std::string out = dir + "/selection.json";
    const auto o = run_select(vm, store, t.file, ks[i], out);
    print_selection(o, store, out);
    if (!o.task.has_images()) {
      std::cout << "the task lists no images: selection only\n";
      continue;
    }
    // The baselines do not depend on k: the first k computes them, the others reuse MLL only.
    do_reuse(store, o.task, select::read_selection(out), vm, dir, /*baselines=*/i == 0);
  }
}

int run_run(const po::variables_map& vm, distributed::Session& session) {
  const std::string path = vm["store"].as<std::string>();
  const std::string dir = vm["out"].as<std::string>();
  const auto ks = parse_k_grid(vm["k"].as<std::string>());
  const auto tasks = load_run_tasks(vm["task"].as<std::vector<std::string>>(), dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) MLL_THROW(UsageError, dir, ": cannot create the output folder: ", ec.message());
  const bool force = vm["force"].as<bool>();
  std::vector<bool> reused;
  for (const auto& t : tasks) {
    reused.push_back(!force && t.done(ks));
    if (reused.back()) {
      log::info("task ", t.task.name, ": results exist in ", t.dir,
                ", read as they are (--force recomputes)");
    }
  }
  if (std::find(reused.begin(), reused.end(), false) != reused.end()) {
    const auto manifest = zoo::ZooManifest::load(vm["zoo"].as<std::string>());
    label::LabelOptions options;
    options.run = run_options(vm);
    options.cost_rule = options.run.device.is_cuda();  // as `mll label --unit auto`
    options.progress = false;
    StopSignals signals;
    const auto report = distributed::label_here(path, manifest.load_all(), options);
    std::cout << "labeled " << report.labeled.size() << ", already done " << report.skipped.size()
              << ", failed " << report.failed.size() << "\n";
    const auto store = store::Store::open(path, store::Store::Mode::kRead);
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      if (!reused[i]) run_task(vm, store, tasks[i], ks);
    }
  }
  std::vector<reuse::TaskReports> results;
  for (std::size_t i = 0; i < tasks.size(); ++i) results.push_back(tasks[i].reports(ks, reused[i]));
  const auto table = reuse::summarize(ks, results);
  const std::string title = "mll run: top-1 accuracy over " + std::to_string(tasks.size()) +
                            (tasks.size() == 1 ? " task" : " tasks");
  reuse::write_summary(table, title, dir);
  std::cout << "\nTop-1 accuracy (%) over " << tasks.size()
            << (tasks.size() == 1 ? " task" : " tasks") << " ("
            << std::count(reused.begin(), reused.end(), true) << " read from earlier results):\n\n"
            << reuse::summary_markdown(table) << "\nsummary: " << dir << "/summary.html\n";
  return 0;
}

}  // namespace

void add_select_commands(std::vector<Command>& commands) {
  commands.push_back({"select", "pick models per class of a task from the label store",
                      "--task T [--store S] [--zoo Z] [--k 1] [--alpha 0.7] "
                      "[--metric precision|recall|f1] [--mix all|others] "
                      "[--match-models best|best:N|all|ID,...|none] [--text-cache DIR|none] "
                      "[--out selection.json]",
                      select_options, select_run});
  commands.back().example =
      "mll select --task tasks/pets.json --store store.h5 --zoo zoo.json --k 2 --out "
      "pets.selection.json";
  commands.push_back({"reuse", "ensemble the selected models on the task's images, with baselines",
                      "--task T --selection F --out DIR [--store S] [--zoo Z] [--templates F]",
                      reuse_cmd_options, reuse_run});
  commands.back().example =
      "mll reuse --task tasks/pets.json --selection pets.selection.json --out pets-report";
  commands.push_back({"run",
                      "label what is missing, select, reuse: one job over one or several tasks, "
                      "one table",
                      "--task T|DIR [--task ...] --out DIR [--store S] [--zoo Z] [--k K[,K...]] "
                      "[--force]",
                      run_cmd_options, run_run, true});
  commands.back().example =
      "mll run --task tasks/ --k 1,3 --out grid --store store.h5 --zoo zoo.json";
}

}  // namespace mll::cli
