// mll zoo add | list | check | synth
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "command.hpp"
#include "mll/core/error.hpp"
#include "mll/core/log.hpp"
#include "mll/feed/parity.hpp"
#include "mll/zoo/authored.hpp"
#include "mll/zoo/check.hpp"
#include "mll/zoo/model_spec.hpp"
#include "mll/zoo/runner.hpp"
#include "options.hpp"

namespace mll::cli {
namespace {

zoo::ZooManifest load_or_new(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return zoo::ZooManifest::load(path);
  return zoo::ZooManifest(path);
}

void add_options(po::options_description& d, po::positional_options_description& p) {
  d.add_options()("sidecar", po::value<std::vector<std::string>>()->required()->value_name("FILE"),
                  "model sidecar JSON files to add (the TorchScript file sits beside each)")(
      "zoo,z", po::value<std::string>()->default_value("zoo.json")->value_name("FILE"),
      "zoo manifest (created when missing)");
  p.add("sidecar", -1);
}

int add_run(const po::variables_map& vm, distributed::Session& session) {
  auto manifest = load_or_new(vm["zoo"].as<std::string>());
  for (const auto& sidecar : vm["sidecar"].as<std::vector<std::string>>()) {
    const auto entry = manifest.add_sidecar(sidecar);
    std::cout << "added " << entry.id << " (" << entry.sidecar << ")\n";
  }
  manifest.save();
  return 0;
}

void list_options(po::options_description& d, po::positional_options_description&) {
  d.add_options()("zoo,z", po::value<std::string>()->default_value("zoo.json")->value_name("FILE"),
                  "zoo manifest");
}

int list_run(const po::variables_map& vm, distributed::Session& session) {
  const auto manifest = zoo::ZooManifest::load(vm["zoo"].as<std::string>());
  std::cout << std::left << std::setw(28) << "id" << std::setw(7) << "size" << std::setw(15)
            << "tokenizer" << std::right << std::setw(12) << "params" << std::setw(10) << "GFLOPs"
            << "  sidecar\n";
  for (const auto& spec : manifest.load_all()) {
    std::ostringstream tokenizer;
    tokenizer << spec.tokenizer.kind << "/" << spec.tokenizer.context_length;
    std::cout << std::left << std::setw(28) << spec.id << std::setw(7) << spec.image_size
              << std::setw(15) << tokenizer.str() << std::right << std::setw(12) << spec.params
              << std::setw(10) << std::fixed << std::setprecision(2) << spec.gflops_per_image
              << "  "
              << manifest.sidecar_path(
                     *std::find_if(manifest.entries().begin(), manifest.entries().end(),
                                   [&](const zoo::ZooEntry& e) { return e.id == spec.id; }))
              << "\n";
  }
  return 0;
}

void check_options(po::options_description& d, po::positional_options_description&) {
  d.add_options()("zoo,z", po::value<std::string>()->default_value("zoo.json")->value_name("FILE"),
                  "zoo manifest")("models", po::value<std::string>()->value_name("ID,..."),
                                  "check only these models (default: all)");
  add_device_options(d);
  add_parity_option(d);
}

// The worst parity cosine, "-" for a sidecar without reference embeddings.
std::string parity_column(const zoo::CheckReport& report) {
  if (!report.parity) return "-";
  std::ostringstream out;
  out << std::fixed << std::setprecision(8) << report.parity->worst;
  return out.str();
}

int check_run(const po::variables_map& vm, distributed::Session& session) {
  const auto manifest = zoo::ZooManifest::load(vm["zoo"].as<std::string>());
  zoo::CheckOptions options;
  options.run = run_options(vm);
  const double min_cosine = parity_min_cosine(vm, options.run.precision);
  options.parity = [min_cosine](const zoo::Model& model) {
    return feed::measure_parity(model, min_cosine);
  };
  const auto wanted = split_ids(vm.count("models") ? vm["models"].as<std::string>() : "");
  std::cout << std::left << std::setw(28) << "id" << std::right << std::setw(6) << "dim"
            << std::setw(12) << "params" << std::setw(12) << "image ms" << std::setw(11)
            << "text ms" << std::setw(12) << "parity"
            << "  status\n";
  int failures = 0;
  for (const auto& entry : manifest.entries()) {
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), entry.id) == wanted.end()) {
      continue;
    }
    zoo::CheckReport report;
    try {
      report = zoo::check_model(manifest.load_spec(entry.id), options);
    } catch (const Error& e) {
      report.id = entry.id;
      report.ok = false;
      report.message = e.what();
    }
    failures += report.ok ? 0 : 1;
    std::cout << std::left << std::setw(28) << report.id << std::right << std::setw(6)
              << report.image_dim << std::setw(12) << report.params << std::setw(12) << std::fixed
              << std::setprecision(2) << report.latency_ms_image << std::setw(11)
              << report.latency_ms_text << std::setw(12) << parity_column(report) << "  "
              << (report.ok ? "ok" : "FAILED: " + report.message) << "\n";
  }
  for (const auto& id : wanted) {
    if (!manifest.contains(id)) MLL_THROW(UsageError, "no model '", id, "' in the zoo manifest");
  }
  if (failures > 0) {
    MLL_THROW(DataError, failures, " model(s) failed the check (see the table above)");
  }
  return 0;
}

void synth_options(po::options_description& d, po::positional_options_description&) {
  d.add_options()(
      "kind", po::value<std::string>()->default_value("small")->value_name("KIND"),
      "small (fast tests) or vit-b32 (ViT-B/32 image tower + 12-layer text transformer)")(
      "dim", po::value<int>()->default_value(0)->value_name("D"),
      "embedding width (0: 64 for small, 512 for vit-b32)")(
      "seed", po::value<std::uint64_t>()->default_value(0)->value_name("S"), "weight seed")(
      "id", po::value<std::string>()->value_name("ID"), "model id (default: <kind>-s<seed>)")(
      "out,o", po::value<std::string>()->required()->value_name("DIR"),
      "output directory (created): <id>.pt and <id>.json")(
      "zoo,z", po::value<std::string>()->value_name("FILE"),
      "also add the model to this zoo manifest");
}

int synth_run(const po::variables_map& vm, distributed::Session& session) {
  zoo::AuthoredModelParams params;
  params.kind = vm["kind"].as<std::string>();
  if (params.kind != "small" && params.kind != "vit-b32") {
    MLL_THROW(UsageError, "--kind must be small or vit-b32, not '", params.kind, "'");
  }
  if (vm["dim"].as<int>() < 0) MLL_THROW(UsageError, "--dim must be >= 0");
  params.embed_dim = vm["dim"].as<int>();
  params.seed = vm["seed"].as<std::uint64_t>();
  params.id = vm.count("id") ? vm["id"].as<std::string>()
                             : params.kind + "-s" + std::to_string(params.seed);
  const std::string dir = vm["out"].as<std::string>();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) MLL_THROW(UsageError, dir, ": cannot create output directory: ", ec.message());
  const auto model = zoo::write_authored_model(params, dir);
  std::cout << "wrote " << model.model_path << " and " << model.sidecar_path << "\n";
  if (vm.count("zoo")) {
    auto manifest = load_or_new(vm["zoo"].as<std::string>());
    manifest.add_sidecar(model.sidecar_path);
    manifest.save();
  }
  return 0;
}

}  // namespace

void add_zoo_commands(std::vector<Command>& commands) {
  commands.push_back({"zoo add", "add model sidecars to a zoo manifest",
                      "SIDECAR... [--zoo zoo.json]", add_options, add_run});
  commands.back().example = "mll zoo add exported/*.json --zoo zoo.json";
  commands.push_back({"zoo list", "list the models of a zoo manifest", "[--zoo zoo.json]",
                      list_options, list_run});
  commands.back().example = "mll zoo list --zoo zoo.json";
  commands.push_back({"zoo check", "load every model, run both towers, verify and time them",
                      "[--zoo zoo.json] [--models ID,...] [--device auto]", check_options,
                      check_run});
  commands.back().example = "mll zoo check --zoo zoo.json --models ViT-B-32 --device cpu";
  commands.push_back({"zoo synth", "write an authored TorchScript VLM (random weights)",
                      "--kind small|vit-b32 --out DIR [--dim D] [--seed S]", synth_options,
                      synth_run});
  commands.back().example = "mll zoo synth --kind vit-b32 --out models --seed 1";
}

}  // namespace mll::cli
