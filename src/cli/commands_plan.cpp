// mll plan: makespan and parallel efficiency of labeling a zoo on N GPUs, simulated.
#include <iostream>
#include <string>

#include "command.hpp"
#include "mll/core/data.hpp"
#include "mll/core/error.hpp"
#include "mll/schedule/makespan.hpp"
#include "mll/schedule/memory.hpp"
#include "mll/zoo/model_spec.hpp"
#include "options.hpp"

namespace mll::cli {
namespace {

void plan_options(po::options_description& d, po::positional_options_description&) {
  const schedule::MakespanOptions defaults;
  d.add_options()("zoo,z", po::value<std::string>()->value_name("FILE"),
                  "zoo manifest whose sidecars carry params and gflops_per_image")(
      "zoo-description", po::value<std::string>()->value_name("FILE"),
      "zoo description JSON (default: mll's data/zoo/openclip49.json, the paper's 49 models)")(
      "cost", po::value<std::string>()->default_value("image")->value_name("KIND"),
      "with a description: image (image tower per image) or pair (image + text tower, "
      "open_clip's FLOPs (B) column)")("gpus,n", po::value<int>()->required()->value_name("N"),
                                       "number of GPUs (workers)")(
      "images,p", po::value<std::int64_t>()->required()->value_name("P"),
      "probe images every model encodes")(
      "unit", po::value<std::string>()->default_value("auto")->value_name("N|auto"),
      "images per shard (mll label --unit); auto: sized from cost so that no shard takes more "
      "than 2% of the ideal makespan, and sub-groups capped so that a load takes at most 2%")(
      "memory", po::value<std::string>()->default_value("80GB")->value_name("BYTES"),
      "device memory per GPU for models (80GB: the H100 / A100-80GB class; 0: no limit); a "
      "group that does not fit is split into sub-groups")(
      "prefetch", po::value<std::string>()->default_value("off")->value_name("on|off"),
      "load a GPU's next sub-group while its last shards run (when both fit --memory)")(
      "gpu-tflops", real_value(defaults.gpu_tflops)->value_name("X"),
      "effective TFLOP/s of one GPU (achieved, not peak)")(
      "load-gbps", real_value(defaults.load_gbps)->value_name("Y"),
      "GB/s at which a GPU loads model weights (fp16: 2 bytes per parameter)")(
      "decode-cores-per-gpu", real_value(defaults.decode_cores_per_gpu)->value_name("C"),
      "CPU cores decoding images for each GPU (0: decoding never limits)")(
      "decode-rate", real_value(defaults.decode_images_per_core)->value_name("R"),
      "images one core decodes and preprocesses per second")("json", po::bool_switch(),
                                                             "print the result as JSON");
}

// --unit: "auto" (0, the work rule) or a positive number of images.
std::int64_t parse_unit(const std::string& text) {
  if (text == "auto") return 0;
  std::size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value < 1) {
    MLL_THROW(UsageError, "--unit must be auto or a positive number of images, not '", text, "'");
  }
  return value;
}

bool parse_switch(const std::string& option, const std::string& text) {
  if (text == "on") return true;
  if (text == "off") return false;
  MLL_THROW(UsageError, option, " must be on or off, not '", text, "'");
}

int plan_run(const po::variables_map& vm, distributed::Session& session) {
  if (vm.count("zoo") && vm.count("zoo-description")) {
    MLL_THROW(UsageError, "give either --zoo or --zoo-description, not both");
  }
  std::vector<schedule::MakespanModel> models;
  if (vm.count("zoo")) {
    if (vm["cost"].as<std::string>() != "image") {
      MLL_THROW(UsageError, "--cost pair needs a zoo description (sidecars carry image costs)");
    }
    models =
        schedule::makespan_models(zoo::ZooManifest::load(vm["zoo"].as<std::string>()).load_all());
  } else {
    const std::string path = vm.count("zoo-description") ? vm["zoo-description"].as<std::string>()
                                                         : data_file("zoo/openclip49.json");
    models = schedule::load_zoo_description(path, vm["cost"].as<std::string>());
  }
  schedule::MakespanOptions options;
  options.gpus = vm["gpus"].as<int>();
  options.images = vm["images"].as<std::int64_t>();
  options.unit = parse_unit(vm["unit"].as<std::string>());
  options.memory = schedule::parse_bytes(vm["memory"].as<std::string>());
  options.prefetch = parse_switch("--prefetch", vm["prefetch"].as<std::string>());
  options.gpu_tflops = vm["gpu-tflops"].as<double>();
  options.load_gbps = vm["load-gbps"].as<double>();
  options.decode_cores_per_gpu = vm["decode-cores-per-gpu"].as<double>();
  options.decode_images_per_core = vm["decode-rate"].as<double>();
  const auto result = schedule::simulate(models, options);
  std::cout << (vm["json"].as<bool>() ? schedule::makespan_json(result)
                                      : schedule::makespan_report(result));
  return 0;
}

}  // namespace

void add_plan_commands(std::vector<Command>& commands) {
  commands.push_back(
      {"plan", "simulate labeling a zoo on N GPUs: makespan and efficiency, dynamic vs static",
       "--gpus N --images P [--zoo zoo.json | --zoo-description FILE] [--unit auto|N] "
       "[--memory 80GB] [--prefetch on|off] [--gpu-tflops X] [--load-gbps Y] "
       "[--decode-cores-per-gpu C] [--json]",
       plan_options, plan_run});
  commands.back().example = "mll plan --gpus 512 --images 150000 --memory 80GB";
}

}  // namespace mll::cli
