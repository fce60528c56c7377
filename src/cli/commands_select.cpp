// mll select | reuse | run
#include <filesystem>
#include <iostream>
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
#include "mll/select/match.hpp"
#include "mll/select/selection_file.hpp"
#include "mll/select/text_cache.hpp"
#include "mll/store/store.hpp"
#include "mll/zoo/model_spec.hpp"
#include "options.hpp"

namespace mll::cli {
namespace {

void select_only_options(po::options_description& d) {
  d.add_options()("k", po::value<int>()->default_value(1)->value_name("K"), "models per class")(
      "alpha", real_value(0.7)->value_name("A"),
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

// Matching and selection against an open store; writes `out` and the store's copy.
SelectOutcome run_select(const po::variables_map& vm, const store::Store& store,
                         const std::string& out) {
  SelectOutcome o;
  o.task = select::load_task(vm["task"].as<std::string>());
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
  if (vm["k"].as<int>() < 1) MLL_THROW(UsageError, "--k must be at least 1");
  so.k = static_cast<std::size_t>(vm["k"].as<int>());
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
  const auto o = run_select(vm, store, out);
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

int do_reuse(const store::Store& store, const select::Task& task,
             const select::SelectionFile& selection, const po::variables_map& vm,
             const std::string& dir) {
  const auto manifest = zoo::ZooManifest::load(vm["zoo"].as<std::string>());
  auto options = reuse_options(vm);
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
  common_options(d);
  d.add_options()("zoo,z", po::value<std::string>()->default_value("zoo.json")->value_name("FILE"),
                  "zoo manifest: models to label (what is missing), text towers, model files")(
      "out,o", po::value<std::string>()->required()->value_name("DIR"),
      "output folder (selection.json, report.json, report.html, predictions.csv)");
  select_only_options(d);
  reuse_only_options(d);
}

int run_run(const po::variables_map& vm, distributed::Session& session) {
  const std::string path = vm["store"].as<std::string>();
  const std::string dir = vm["out"].as<std::string>();
  select::load_task(vm["task"].as<std::string>());  // fail on a bad task before labeling
  {
    const auto manifest = zoo::ZooManifest::load(vm["zoo"].as<std::string>());
    label::LabelOptions options;
    options.run = run_options(vm);
    options.cost_rule = options.run.device.is_cuda();  // as `mll label --unit auto`
    options.progress = false;
    StopSignals signals;
    const auto report = distributed::label_here(path, manifest.load_all(), options);
    std::cout << "labeled " << report.labeled.size() << ", already done " << report.skipped.size()
              << ", failed " << report.failed.size() << "\n";
  }
  std::filesystem::create_directories(dir);
  const auto store = store::Store::open(path, store::Store::Mode::kRead);
  const std::string out = dir + "/selection.json";
  const auto o = run_select(vm, store, out);
  print_selection(o, store, out);
  if (!o.task.has_images()) {
    std::cout << "the task lists no images: selection only\n";
    return 0;
  }
  return do_reuse(store, o.task, select::read_selection(out), vm, dir);
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
  commands.push_back({"run", "label what is missing, select, reuse: one job",
                      "--task T --out DIR [--store S] [--zoo Z]", run_cmd_options, run_run, true});
  commands.back().example =
      "mll run --task tasks/pets.json --out pets-run --store store.h5 --zoo zoo.json";
}

}  // namespace mll::cli
