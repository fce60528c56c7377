// Forward throughput of the ViT-B/32-shaped image tower: images/s for each thread count, the
// median of several timed batches after a warm-up (bench/forward_throughput.sh drives it).
//
//   mll_forward_bench [--threads 1,2] [--batch 32] [--repeats 5] [--device cpu] [--half]
//                     [--kind vit-b32] [--dir DIR] [--consuming]
//
// --consuming: the model reads the batch in place, as the last model of a group does in
// `mll label` (Model::encode_images_consuming), instead of a copy of it: the forward pass alone.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "mll/core/error.hpp"
#include "mll/zoo/authored.hpp"
#include "mll/zoo/runner.hpp"

namespace {

std::vector<int> parse_list(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoi(item));
  return out;
}

int run(int argc, char** argv) {
  std::vector<int> thread_counts = {1, 2};
  int batch = 32;
  int repeats = 5;
  std::string device = "cpu";
  std::string kind = "vit-b32";
  std::string dir;
  bool half = false;
  bool consuming = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) MLL_THROW(mll::UsageError, arg, " needs a value");
      return argv[++i];
    };
    if (arg == "--threads") {
      thread_counts = parse_list(value());
    } else if (arg == "--batch") {
      batch = std::stoi(value());
    } else if (arg == "--repeats") {
      repeats = std::stoi(value());
    } else if (arg == "--device") {
      device = value();
    } else if (arg == "--kind") {
      kind = value();
    } else if (arg == "--dir") {
      dir = value();
    } else if (arg == "--half") {
      half = true;
    } else if (arg == "--consuming") {
      consuming = true;
    } else {
      MLL_THROW(mll::UsageError, "unknown argument '", arg, "'");
    }
  }
  namespace stdfs = std::filesystem;
  const bool own_dir = dir.empty();
  if (own_dir) {
    dir = (stdfs::temp_directory_path() / ("mll-forward-bench-" + std::to_string(::getpid())))
              .string();
  }
  stdfs::create_directories(dir);

  mll::zoo::AuthoredModelParams params;
  params.kind = kind;
  params.id = "bench-" + kind;
  const auto authored = mll::zoo::write_authored_model(params, dir);
  mll::zoo::RunOptions opts;
  opts.device = mll::zoo::parse_device(device);
  opts.precision = half ? mll::zoo::Precision::kFp16 : mll::zoo::Precision::kFp32;
  const mll::zoo::Model model(authored.spec, opts);

  const int s = authored.spec.image_size;
  std::vector<float> images(static_cast<std::size_t>(batch) * 3 * s * s);
  std::mt19937 rng(0);
  std::normal_distribution<float> pixel(0.0f, 1.0f);
  for (float& v : images) v = pixel(rng);

  // The model may write into a buffer it consumes: the values only need to be some image-sized
  // input, so the same buffer serves every call.
  auto forward = [&] {
    if (consuming) {
      model.encode_images_consuming(images.data(), batch, s, s);
    } else {
      model.encode_images(images.data(), batch, s, s);
    }
  };
  std::printf("kind=%s device=%s half=%d batch=%d repeats=%d consuming=%d gflops_per_image=%.3f\n",
              kind.c_str(), model.device().str().c_str(),
              model.precision() == mll::zoo::Precision::kFp16 ? 1 : 0, batch, repeats,
              consuming ? 1 : 0, authored.spec.gflops_per_image);
  for (const int threads : thread_counts) {
    mll::zoo::set_threads(threads);
    forward();  // warm-up
    std::vector<double> seconds;
    for (int r = 0; r < repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      forward();
      seconds.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(seconds.begin(), seconds.end());
    const double median = seconds[seconds.size() / 2];
    std::printf("threads=%d median_batch_s=%.3f min_batch_s=%.3f images_per_s=%.2f gflops=%.1f\n",
                threads, median, seconds.front(), batch / median,
                batch * authored.spec.gflops_per_image / median);
    std::fflush(stdout);
  }
  if (own_dir) stdfs::remove_all(dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mll_forward_bench: %s\n", e.what());
    return static_cast<int>(mll::exit_code_of(e));
  }
}
