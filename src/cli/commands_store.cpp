// mll probe build | label | inspect | store verify | store rm-model | store export | zoo show
#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "command.hpp"
#include "mll/core/cpus.hpp"
#include "mll/core/error.hpp"
#include "mll/core/log.hpp"
#include "mll/core/signals.hpp"
#include "mll/distributed/collective.hpp"
#include "mll/distributed/label.hpp"
#include "mll/distributed/session.hpp"
#include "mll/graph/graph.hpp"
#include "mll/label/job.hpp"
#include "mll/probe/probe_set.hpp"
#include "mll/probe/sampling.hpp"
#include "mll/probe/sources.hpp"
#include "mll/report/zoo.hpp"
#include "mll/schedule/memory.hpp"
#include "mll/select/selection_file.hpp"
#include "mll/store/export.hpp"
#include "mll/store/store.hpp"
#include "mll/zoo/model_spec.hpp"
#include "mll/zoo/runner.hpp"
#include "options.hpp"

namespace mll::cli {
namespace {

void store_option(po::options_description& d) {
  d.add_options()("store,s",
                  po::value<std::string>()->default_value("store.h5")->value_name("FILE"),
                  "label store (index file; its data lives in FILE.d/)");
}

// ---------------------------------------------------------------------------------------------

void probe_options(po::options_description& d, po::positional_options_description&) {
  d.add_options()("graph,g",
                  po::value<std::string>()->default_value("graph.h5")->value_name("FILE"),
                  "graph file written by mll graph build")(
      "images", po::value<std::string>()->value_name("DIR"),
      "image tree: one subfolder per wnid (ImageNet layout)")(
      "manifest", po::value<std::string>()->value_name("FILE"),
      "or a manifest: lines 'path<TAB>wnid' (paths relative to the manifest's folder)")(
      "shards", po::value<std::string>()->value_name("SPEC"),
      "or webdataset shards: a .tar, a folder of .tar files, or a brace pattern such as "
      "'shards/{000000..000009}.tar' (class from .cls, the JSON field --class-field, or the key)")(
      "class-field", po::value<std::string>()->default_value("wnid")->value_name("NAME"),
      "with --shards: the .json field that holds a sample's wnid or class index")(
      "per-node", po::value<int>()->default_value(75)->value_name("N"),
      "probe images per node (n_max)")(
      "seed", po::value<std::uint64_t>()->default_value(0)->value_name("S"), "sampling seed")(
      "grow", po::bool_switch(),
      "grow an existing store to a larger graph / more images (old images keep their ids)")(
      "force", po::bool_switch(), "replace an existing store (its labels are lost)")(
      "verify", po::bool_switch(),
      "decode every image first (in parallel) and leave the unreadable ones out, with a warning")(
      "strict", po::bool_switch(), "with --verify: refuse (exit 65) when any image is unreadable");
  store_option(d);
}

// --verify: the source without images that cannot be decoded (or, --strict, an error).
probe::ImageSource verified_source(const po::variables_map& vm, probe::ImageSource source) {
  if (!vm["verify"].as<bool>()) {
    if (vm["strict"].as<bool>()) MLL_THROW(UsageError, "--strict needs --verify");
    return source;
  }
  const int threads = usable_cpu_count();
  const auto unreadable = probe::find_unreadable_images(source, threads, true);
  if (unreadable.empty()) return source;
  for (const auto& line : unreadable) log::warn("unreadable probe image ", line);
  if (vm["strict"].as<bool>()) {
    MLL_THROW(DataError, source.description, ": ", unreadable.size(),
              " image(s) cannot be decoded (listed above), first: ", unreadable.front());
  }
  log::warn(unreadable.size(), " unreadable image(s) left out of the probe set");
  return probe::without(source, unreadable);
}

probe::ImageSource read_source(const po::variables_map& vm) {
  const bool tree = vm.count("images") != 0, manifest = vm.count("manifest") != 0,
             shards = vm.count("shards") != 0;
  if (int{tree} + int{manifest} + int{shards} != 1) {
    MLL_THROW(UsageError, "give exactly one of --images DIR, --manifest FILE and --shards SPEC");
  }
  if (tree) return probe::scan_image_tree(vm["images"].as<std::string>());
  if (manifest) return probe::read_manifest(vm["manifest"].as<std::string>());
  return probe::read_shards(vm["shards"].as<std::string>(), vm["class-field"].as<std::string>());
}

int probe_run(const po::variables_map& vm, distributed::Session& session) {
  const std::string path = vm["store"].as<std::string>();
  probe::ProbeOptions options;
  options.per_node = vm["per-node"].as<int>();
  options.seed = vm["seed"].as<std::uint64_t>();
  if (options.per_node <= 0) MLL_THROW(UsageError, "--per-node must be positive");
  const auto graph = graph::read_graph_file(vm["graph"].as<std::string>());
  const auto source = verified_source(vm, read_source(vm));
  const int threads = usable_cpu_count();
  if (vm["grow"].as<bool>()) {
    auto store = store::Store::open(path, store::Store::Mode::kWrite);
    auto grown = probe::grow_probe_set(store.probe(), store.graph(), graph, source, options);
    probe::record_fingerprints(grown, threads);
    const auto added = grown.image_count() - store.probe().image_count();
    store.grow(graph, grown);
    std::cout << "grew " << path << ": " << graph.size() << " nodes, " << grown.image_count()
              << " probe images (" << added << " new)\n";
    return 0;
  }
  auto set = probe::build_probe_set(graph, source, options);
  probe::record_fingerprints(set, threads);
  const auto stats = probe::compute_stats(set);
  auto store = store::Store::create(path, graph, set, vm["force"].as<bool>());
  std::cout << "store " << path << "\n"
            << "  graph nodes     " << graph.size() << "\n"
            << "  probe images    " << stats.images << " (each stored once)\n"
            << "  memberships     " << stats.memberships << " (node, image) pairs\n"
            << "  nodes full      " << stats.full_nodes << " with " << options.per_node
            << " images, " << stats.empty_nodes << " without images\n"
            << "  probe hash      " << set.content_hash() << "\n";
  return 0;
}

// ---------------------------------------------------------------------------------------------

void print_label_report(const label::LabelReport& report, const store::Store& store);

void label_options(po::options_description& d, po::positional_options_description&) {
  store_option(d);
  d.add_options()("zoo,z", po::value<std::string>()->default_value("zoo.json")->value_name("FILE"),
                  "zoo manifest")("models", po::value<std::string>()->value_name("ID,..."),
                                  "label only these models (default: every model of the zoo)")(
      "batch", po::value<int>()->default_value(32)->value_name("IMAGES"),
      "images per forward pass; keep it fixed across reruns of one store (results are "
      "bit-identical for a fixed batch)")(
      "text-batch", po::value<int>()->default_value(64)->value_name("CAPTIONS"),
      "captions per forward pass")(
      "unit", po::value<std::string>()->default_value("auto")->value_name("IMAGES"),
      "probe images per shard (the unit of scheduling and commit: a kill loses at most this "
      "much work); auto: on CUDA cut by cost for the job's ranks (mll plan's rule: shards and "
      "sub-groups sized from the ideal makespan), on the CPU 1024")(
      "label-block", po::value<std::int64_t>()->default_value(1024)->value_name("IMAGES"),
      "probe images per block when computing summary labels (memory: IMAGES x nodes floats; "
      "under MPI the ranks share the blocks)")(
      "decode-threads", po::value<int>()->default_value(0)->value_name("N"),
      "background decode + preprocess threads (0: chosen with --threads from the CPUs this "
      "process may use; docs/running.md)")(
      "image-cache", po::value<std::string>()->value_name("DIR"),
      "keep the preprocessed probe images (uint8 crops, per preprocessing config and shard) in "
      "DIR, so that later runs and added models skip decoding")(
      "memory", po::value<std::string>()->default_value("auto")->value_name("SIZE"),
      "device memory the models of one rank may take, e.g. 24GB or 4GiB (auto: 90% of the GPU's "
      "free memory, or 80% of the rank's share of the host's available memory; 0: no limit); a "
      "preprocessing group that needs more is labeled in sub-groups that share decoded images "
      "(STORE.crops/ unless --image-cache)")(
      "fast-decode", po::bool_switch(),
      "decode large JPEGs at a reduced DCT scale (faster, not bit-exact; keep it the same across "
      "reruns of one store)")("fail-fast", po::bool_switch(), "stop at the first failing model")(
      "rehash", po::bool_switch(),
      "hash every model file again instead of trusting <store>.digests for files whose size, "
      "modification time and inode are unchanged")(
      "quarantine-foreign", po::bool_switch(),
      "move finished model files labeled for another graph or probe set (an index restored "
      "from elsewhere) to STORE.quarantine/ instead of refusing the store")(
      "log-dir", po::value<std::string>()->value_name("DIR"),
      "each rank also logs to DIR/rank-<R>.log (the folder is created)")(
      "no-progress", po::bool_switch(), "do not print progress");
  add_device_options(d);
  add_parity_option(d);
}

int label_run(const po::variables_map& vm, distributed::Session& session) {
  const auto manifest = zoo::ZooManifest::load(vm["zoo"].as<std::string>());
  std::vector<zoo::ModelSpec> specs;
  const auto wanted = split_ids(vm.count("models") ? vm["models"].as<std::string>() : "");
  for (const auto& id : wanted) {
    if (!manifest.contains(id)) MLL_THROW(UsageError, "no model '", id, "' in ", manifest.path());
  }
  for (const auto& entry : manifest.entries()) {
    if (wanted.empty() || std::find(wanted.begin(), wanted.end(), entry.id) != wanted.end()) {
      specs.push_back(manifest.load_spec(entry.id));
    }
  }
  label::LabelOptions options;
  options.run = run_options(vm);
  options.batch = vm["batch"].as<int>();
  options.text_batch = vm["text-batch"].as<int>();
  const std::string unit = vm["unit"].as<std::string>();
  if (unit == "auto") {
    options.cost_rule = options.run.device.is_cuda();
  } else {
    try {
      std::size_t used = 0;
      options.unit_images = std::stoll(unit, &used);
      if (used != unit.size() || options.unit_images < 1) throw std::invalid_argument(unit);
    } catch (const std::exception&) {
      MLL_THROW(UsageError, "--unit '", unit, "': expected a positive number of images or auto");
    }
  }
  options.label_block = vm["label-block"].as<std::int64_t>();
  if (vm.count("image-cache")) {
    options.image_cache = vm["image-cache"].as<std::string>();
    std::error_code ec;
    std::filesystem::create_directories(options.image_cache, ec);
    if (ec || !std::filesystem::is_directory(options.image_cache)) {
      MLL_THROW(UsageError, "--image-cache ", options.image_cache,
                ": cannot create the folder: ", ec ? ec.message() : "not a directory");
    }
  }
  const std::string memory = vm["memory"].as<std::string>();
  options.memory = memory == "auto" ? -1 : schedule::parse_bytes(memory);
  options.fast_decode = vm["fast-decode"].as<bool>();
  if (vm["decode-threads"].as<int>() < 0) MLL_THROW(UsageError, "--decode-threads must be >= 0");
  options.fail_fast = vm["fail-fast"].as<bool>();
  if (vm.count("parity-min-cosine")) {
    options.parity_min_cosine = parity_min_cosine(vm, options.run.precision);
  }
  options.quarantine_foreign = vm["quarantine-foreign"].as<bool>();
  options.rehash = vm["rehash"].as<bool>();
  options.progress = !vm["no-progress"].as<bool>();

  StopSignals signals;  // SIGTERM / SIGUSR1 / SIGINT: commit and exit 75
  const std::string store_path = vm["store"].as<std::string>();
  // Under mpirun / srun: rank 0 writes, every rank computes (docs/running.md); otherwise the
  // same driver runs alone.
  distributed::Comm comm = session.world();
  // Every rank sets itself up; a failure on one ends all of them alike.
  distributed::Outcome setup;
  setup.run([&] {
    distributed::configure_process(comm, options,
                                   vm.count("log-dir") ? vm["log-dir"].as<std::string>() : "",
                                   {vm["threads"].as<int>(), vm["decode-threads"].as<int>()});
  });
  distributed::agree(comm, setup, "setting up the ranks");
  StopFlag stop;
  const auto report = distributed::label(comm, store_path, specs, options, stop);
  if (comm.rank() != 0) return 0;
  print_label_report(report, store::Store::open(store_path, store::Store::Mode::kRead));
  return report.failed.empty() ? 0 : static_cast<int>(ExitCode::kDataError);
}

void print_label_report(const label::LabelReport& report, const store::Store& store) {
  std::cout << "labeled " << report.labeled.size() << ", already done " << report.skipped.size()
            << ", failed " << report.failed.size() << " (" << report.images_decoded
            << " images decoded, " << report.image_rows << " image embeddings, " << std::fixed
            << std::setprecision(2) << report.forward_seconds << " s in model forward passes)\n";
  for (const auto& id : report.failed) {
    const auto record = store.find_model(id);
    std::cout << "  failed: " << id << (record ? ": " + record->message : std::string()) << "\n";
  }
}

// ---------------------------------------------------------------------------------------------

void inspect_options(po::options_description& d, po::positional_options_description& p) {
  store_option(d);
  d.add_options()("json", po::bool_switch(),
                  "print the same as one JSON object (docs/store-format.md, \"mll inspect "
                  "--json\")");
  p.add("store", 1);
}

// `mll inspect --json`: what the table shows, for scripts.
nlohmann::json inspect_json(const store::Store& store) {
  nlohmann::json out = {
      {"store", store.path()},
      {"graph", {{"nodes", store.graph().size()}, {"hash", store.graph().content_hash()}}},
      {"probe", {{"images", store.probe().image_count()}, {"hash", store.probe().content_hash()}}},
      {"captions", store.captions().size()},
      {"models", nlohmann::json::array()}};
  for (const auto& record : store.models()) {
    const auto progress = store.progress(record.id);
    nlohmann::json model = {{"id", record.id},
                            {"status", store::to_string(record.status)},
                            {"captions_done", progress.text_done},
                            {"captions_total", progress.text_total},
                            {"images_done", progress.images_done},
                            {"images_total", progress.images_total},
                            {"model_sha256", record.model_sha256},
                            {"registered_utc", record.registered_utc}};
    if (record.status == store::ModelStatus::kFailed) model["message"] = record.message;
    if (!record.finished_utc.empty()) {
      const auto info = store.model_info(record.id);
      model["finished_utc"] = record.finished_utc;
      model["dim"] = info.dim;
      model["mll_version"] = info.mll_version;
      auto config = nlohmann::json::parse(info.config_json, nullptr, /*allow_exceptions=*/false);
      model["config"] = config.is_discarded() ? nlohmann::json(info.config_json) : config;
      if (!info.parity_json.empty()) {
        auto parity = nlohmann::json::parse(info.parity_json, nullptr, false);
        model["parity"] = parity.is_discarded() ? nlohmann::json(info.parity_json) : parity;
      }
    }
    out["models"].push_back(std::move(model));
  }
  return out;
}

int inspect_run(const po::variables_map& vm, distributed::Session& session) {
  const auto store = store::Store::open(vm["store"].as<std::string>(), store::Store::Mode::kRead);
  if (vm["json"].as<bool>()) {
    std::cout << inspect_json(store).dump(2) << "\n";
    return 0;
  }
  std::cout << "store " << store.path() << "\n"
            << "  graph   " << store.graph().size() << " nodes, hash "
            << store.graph().content_hash().substr(0, 16) << "\n"
            << "  probe   " << store.probe().image_count() << " images, hash "
            << store.probe().content_hash().substr(0, 16) << "\n"
            << "  captions " << store.captions().size() << "\n"
            << "  models  " << store.models().size() << "\n\n";
  std::cout << std::left << std::setw(28) << "model" << std::setw(9) << "status" << std::right
            << std::setw(14) << "captions" << std::setw(18) << "images"
            << "  details\n";
  for (const auto& record : store.models()) {
    const auto progress = store.progress(record.id);
    std::cout << std::left << std::setw(28) << record.id << std::setw(9)
              << store::to_string(record.status) << std::right << std::setw(14)
              << (std::to_string(progress.text_done) + "/" + std::to_string(progress.text_total))
              << std::setw(18)
              << (std::to_string(progress.images_done) + "/" +
                  std::to_string(progress.images_total))
              << "  ";
    if (record.status == store::ModelStatus::kFailed) {
      std::cout << record.message;
    } else if (!record.finished_utc.empty()) {
      const auto info = store.model_info(record.id);
      std::cout << "d=" << info.dim << " finished " << record.finished_utc << " sha256 "
                << record.model_sha256.substr(0, 12) << " mll " << info.mll_version;
    } else {
      std::cout << "registered " << record.registered_utc << " sha256 "
                << record.model_sha256.substr(0, 12);
    }
    std::cout << "\n";
  }
  return 0;
}

void verify_options(po::options_description& d, po::positional_options_description& p) {
  store_option(d);
  p.add("store", 1);
}

int verify_run(const po::variables_map& vm, distributed::Session& session) {
  const std::string path = vm["store"].as<std::string>();
  const auto store = store::Store::open(path, store::Store::Mode::kRead);
  const auto report = store.verify();
  for (const auto& violation : report.violations) std::cout << "violation: " << violation << "\n";
  for (const auto& note : report.notes) std::cout << "note: " << note << "\n";
  if (!report.ok()) {
    MLL_THROW(DataError, path, ": ", report.violations.size(), " invariant violation(s)");
  }
  std::cout << path << ": ok (" << store.models().size() << " models)\n";
  return 0;
}

void rm_options(po::options_description& d, po::positional_options_description& p) {
  d.add_options()("model", po::value<std::string>()->required()->value_name("ID"), "model id");
  store_option(d);
  p.add("model", 1);
}

int rm_run(const po::variables_map& vm, distributed::Session& session) {
  auto store = store::Store::open(vm["store"].as<std::string>(), store::Store::Mode::kWrite);
  store.remove_model(vm["model"].as<std::string>());
  std::cout << "removed " << vm["model"].as<std::string>() << "\n";
  return 0;
}

void export_options(po::options_description& d, po::positional_options_description&) {
  d.add_options()("format", po::value<std::string>()->default_value("npy")->value_name("npy"),
                  "what to write (npy: numpy arrays plus CSV metadata)")(
      "models", po::value<std::string>()->value_name("ID,..."),
      "models to export (default: every done model)")(
      "dtype", po::value<std::string>()->default_value("float32")->value_name("float16|float32"),
      "element type of the arrays (the store keeps float16: either is exact)")(
      "out,o", po::value<std::string>()->required()->value_name("DIR"), "output folder")(
      "force", po::bool_switch(), "replace files of an earlier export");
  store_option(d);
}

int export_run(const po::variables_map& vm, distributed::Session& session) {
  if (vm["format"].as<std::string>() != "npy") {
    MLL_THROW(UsageError, "--format ", vm["format"].as<std::string>(), ": only npy is written");
  }
  store::ExportOptions options;
  options.type = store::parse_npy_type(vm["dtype"].as<std::string>());
  if (vm.count("models")) {
    options.models = split_ids(vm["models"].as<std::string>());
    if (options.models.empty()) MLL_THROW(UsageError, "--models is empty");
  }
  options.force = vm["force"].as<bool>();
  const auto store = store::Store::open(vm["store"].as<std::string>(), store::Store::Mode::kRead);
  const std::string out = vm["out"].as<std::string>();
  const auto result = store::export_npy(store, out, options);
  std::cout << "exported " << result.models.size() << " model(s) (" << store.probe().image_count()
            << " images, " << store.captions().size() << " captions, "
            << vm["dtype"].as<std::string>() << ") to " << out << "\n";
  return 0;
}

void show_options(po::options_description& d, po::positional_options_description& p) {
  d.add_options()("model", po::value<std::string>()->required()->value_name("ID"), "model id")(
      "top", po::value<int>()->default_value(8)->value_name("N"), "subtrees to list each way")(
      "min-images", po::value<int>()->default_value(50)->value_name("N"),
      "only subtrees with at least this many probe memberships below them")(
      "html", po::value<std::string>()->value_name("FILE"),
      "also write the model card: a self-contained HTML page (docs/reports.md)");
  store_option(d);
  p.add("model", 1);
}

int show_run(const po::variables_map& vm, distributed::Session& session) {
  const std::string id = vm["model"].as<std::string>();
  const auto store = store::Store::open(vm["store"].as<std::string>(), store::Store::Mode::kRead);
  report::OverviewOptions options;
  options.top = std::max(1, vm["top"].as<int>());
  options.min_images = vm["min-images"].as<int>();
  const auto card = report::model_card(store, id, options);  // UsageError: unknown, unlabeled
  const auto print = [&](const char* title, const std::vector<report::SubtreeScore>& list) {
    std::cout << title << "\n";
    for (const auto& s : list) {
      std::cout << "  " << std::fixed << std::setprecision(3) << s.value << "  " << s.name << "  ("
                << s.nodes_below << " nodes below)\n";
    }
  };
  std::cout << "model " << id
            << ": subtree top-1 (recognised probe images, mean over the subtree)\n";
  print("best subtrees", card.best);
  print("worst subtrees", card.worst);
  if (vm.count("html")) {
    const std::string path = vm["html"].as<std::string>();
    select::write_text_atomic(path, report::model_card_html(card));
    std::cout << "wrote " << path << "\n";
  }
  return 0;
}

}  // namespace

void add_store_commands(std::vector<Command>& commands) {
  commands.push_back(
      {"probe build", "pick probe images per graph node and create a label store",
       "--graph graph.h5 --images DIR|--manifest FILE|--shards SPEC [--store store.h5]",
       probe_options, probe_run});
  commands.back().example =
      "mll probe build --graph graph.h5 --images probe-images/ --per-node 75 --store store.h5";
  commands.push_back({"label", "label models into the store (resumes; only what is missing)",
                      "[--store store.h5] [--zoo zoo.json] [--models ID,...]", label_options,
                      label_run, true});
  commands.back().example = "mpirun -np 4 mll label --store store.h5 --zoo zoo.json --log-dir logs";
  commands.push_back({"inspect", "progress, failures and provenance of every model in a store",
                      "[STORE]", inspect_options, inspect_run});
  commands.back().example = "mll inspect store.h5 --json > progress.json";
  commands.push_back({"store verify",
                      "check every invariant of a store; non-zero exit on any "
                      "violation",
                      "[STORE]", verify_options, verify_run});
  commands.back().example = "mll store verify store.h5";
  commands.push_back({"store rm-model", "remove a model's labels from a store",
                      "ID [--store store.h5]", rm_options, rm_run});
  commands.back().example = "mll store rm-model ViT-B-32 --store store.h5";
  commands.push_back({"store export",
                      "embeddings as .npy per model plus CSV metadata (faiss, clip-retrieval)",
                      "--out DIR [--format npy] [--models ID,...] [--dtype float16|float32] "
                      "[--store store.h5] [--force]",
                      export_options, export_run});
  commands.back().example =
      "mll store export --format npy --models ViT-B-32 --dtype float16 --out emb --store store.h5";
  commands.push_back({"zoo show", "a model's label for people: its best and worst subtrees",
                      "ID [--store store.h5] [--html FILE]", show_options, show_run});
  commands.back().example = "mll zoo show ViT-B-32 --store store.h5 --top 5 --html card.html";
}

}  // namespace mll::cli
