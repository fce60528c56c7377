// mll synth: generate the synthetic world (docs/synthetic-world.md).
#include <chrono>
#include <iomanip>
#include <iostream>

#include "command.hpp"
#include "mll/core/error.hpp"
#include "mll/graph/graph.hpp"
#include "mll/synth/world.hpp"

namespace mll::cli {
namespace {

void synth_options(po::options_description& d, po::positional_options_description&) {
  const synth::WorldOptions defaults;
  d.add_options()("graph,g",
                  po::value<std::string>()->default_value("graph.h5")->value_name("FILE"),
                  "the graph (mll graph build); every seed node gets probe images")(
      "out,o", po::value<std::string>()->required()->value_name("DIR"),
      "output directory: images/, models/, zoo.json, tasks/, truth.json")(
      "models", po::value<int>()->default_value(defaults.models)->value_name("N"),
      "number of models (about a third generalists, the rest specialists)")(
      "seed", po::value<std::uint64_t>()->default_value(defaults.seed)->value_name("S"),
      "world seed: the same graph, options and seed give byte-identical files")(
      "images-per-concept",
      po::value<int>()->default_value(defaults.images_per_concept)->value_name("N"),
      "probe images per seed node")(
      "size", po::value<int>()->default_value(defaults.image_size)->value_name("PX"),
      "image side in pixels (a multiple of 16) and the models' input size")(
      "tasks", po::value<int>()->default_value(defaults.tasks)->value_name("N"),
      "number of target tasks")(
      "classes", po::value<int>()->default_value(defaults.classes_per_task)->value_name("N"),
      "classes per task (at most)")(
      "task-images",
      po::value<int>()->default_value(defaults.task_images_per_class)->value_name("N"),
      "labeled test images per task class")(
      "domains", po::value<int>()->default_value(defaults.domains)->value_name("N"),
      "groups of subtrees models are sharp or blurry on (1 to 6)")(
      "force", po::bool_switch(), "replace the world in a non-empty output directory");
}

int synth_run(const po::variables_map& vm, distributed::Session& session) {
  synth::WorldOptions options;
  options.models = vm["models"].as<int>();
  options.seed = vm["seed"].as<std::uint64_t>();
  options.images_per_concept = vm["images-per-concept"].as<int>();
  options.image_size = vm["size"].as<int>();
  options.tasks = vm["tasks"].as<int>();
  options.classes_per_task = vm["classes"].as<int>();
  options.task_images_per_class = vm["task-images"].as<int>();
  options.domains = vm["domains"].as<int>();
  const auto t0 = std::chrono::steady_clock::now();
  const auto graph = graph::read_graph_file(vm["graph"].as<std::string>());
  const auto report =
      synth::write_world(graph, options, vm["out"].as<std::string>(), vm["force"].as<bool>());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  std::cout << "synthetic world in " << report.out_dir << " (seed " << options.seed << ", "
            << std::fixed << std::setprecision(1) << seconds << " s)\n";
  std::cout << "  " << report.probe_images << " probe images, " << report.models.size()
            << " models, " << report.tasks.size() << " tasks (" << report.task_images
            << " images)\n  domains:";
  for (const auto& d : report.domains) std::cout << " " << d.name << " (" << d.seeds.size() << ")";
  std::cout << "\n";
  std::cout << std::left << std::setw(24) << "  task" << std::setw(7) << "style" << std::right
            << std::setw(8) << "classes"
            << "  best model     INB model\n";
  for (const auto& t : report.tasks) {
    auto acc = [&](const std::string& id) {
      for (std::size_t m = 0; m < report.models.size(); ++m) {
        if (report.models[m].id == id) return t.accuracy[m];
      }
      return 0.0;
    };
    std::cout << "  " << std::left << std::setw(22) << t.name << std::setw(7) << t.style
              << std::right << std::setw(8) << t.classes.size() << "  " << std::left << std::setw(4)
              << t.best_model << std::right << std::setprecision(3) << std::setw(7)
              << acc(t.best_model) << "    " << std::left << std::setw(4) << t.inb_model
              << std::right << std::setw(7) << acc(t.inb_model) << "\n";
  }
  std::cout << "ground truth (never read by selection): " << report.out_dir << "/truth.json\n";
  return 0;
}

}  // namespace

void add_synth_commands(std::vector<Command>& commands) {
  commands.push_back({"synth",
                      "generate a synthetic world: probe images, a model zoo, tasks, ground truth",
                      "--graph graph.h5 --out DIR [--models 12] [--seed S] "
                      "[--images-per-concept N] [--size PX]",
                      synth_options, synth_run});
  commands.back().example = "mll synth --graph graph.h5 --out world --models 12 --seed 7";
}

}  // namespace mll::cli
