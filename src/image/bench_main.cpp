// mll_preprocess_bench: decode + preprocess throughput of the exact (or fast) path on one thread.
//
//   mll_preprocess_bench [--size N] [--repeats R] [--fast] [--crop-only|--decode-only] FILE...
//
// Each repeat decodes and preprocesses every file once (to the normalised float tensor, as the
// labeling pipeline does) and prints "repeat <i> <images/s>"; the last line is
// "median <images/s>". --crop-only stops at the uint8 crop, --decode-only after decoding (to
// split the time between the stages). --fast-loss instead prints how far the fast mode's uint8
// crops are from the exact ones (max and mean absolute difference per value). Files are read into
// memory first so that disk speed is not measured.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/image/image.hpp"
#include "mll/image/preprocess.hpp"

int main(int argc, char** argv) {
  try {
    int size = 224;
    int repeats = 5;
    bool fast = false;
    bool crop_only = false;
    bool decode_only = false;
    bool fast_loss = false;
    std::vector<std::string> files;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--size" && i + 1 < argc) {
        size = std::atoi(argv[++i]);
      } else if (arg == "--repeats" && i + 1 < argc) {
        repeats = std::atoi(argv[++i]);
      } else if (arg == "--fast") {
        fast = true;
      } else if (arg == "--crop-only") {
        crop_only = true;
      } else if (arg == "--decode-only") {
        decode_only = true;
      } else if (arg == "--fast-loss") {
        fast_loss = true;
      } else if (!arg.empty() && arg[0] == '-') {
        MLL_THROW(mll::UsageError, "unknown option ", arg);
      } else {
        files.push_back(arg);
      }
    }
    if (files.empty() || repeats < 1 || size < 1) {
      MLL_THROW(mll::UsageError,
                "usage: mll_preprocess_bench [--size N] [--repeats R] [--fast] "
                "[--crop-only|--decode-only] "
                "FILE...");
    }
    std::vector<std::string> bytes;
    for (const auto& f : files) bytes.push_back(mll::fs::read_file(f));

    auto spec = mll::image::PreprocessSpec::square(size);
    if (fast_loss) {
      auto fast_spec = spec;
      fast_spec.fast_jpeg_decode = true;
      int max_diff = 0;
      double total = 0;
      std::size_t values = 0, scaled = 0;
      for (std::size_t i = 0; i < bytes.size(); ++i) {
        const auto exact =
            mll::image::resize_and_crop_u8(mll::image::decode_memory(bytes[i], files[i], {}), spec);
        const auto decoded = mll::image::decode_memory(bytes[i], files[i],
                                                       mll::image::decode_options_for(fast_spec));
        scaled += decoded.scale_denom > 1;
        const auto fast_crop = mll::image::resize_and_crop_u8(decoded, fast_spec);
        for (std::size_t v = 0; v < exact.size_bytes(); ++v) {
          const int d = std::abs(int{exact.data()[v]} - int{fast_crop.data()[v]});
          max_diff = std::max(max_diff, d);
          total += d;
        }
        values += exact.size_bytes();
      }
      std::printf("images %zu scaled %zu max_abs_diff %d mean_abs_diff %.3f\n", bytes.size(),
                  scaled, max_diff, total / static_cast<double>(values));
      return 0;
    }
    spec.fast_jpeg_decode = fast;
    const auto options = mll::image::decode_options_for(spec);
    std::vector<float> tensor(static_cast<std::size_t>(3) * size * size);
    double checksum = 0;  // keeps the work observable so nothing is optimised away
    std::vector<double> rates;
    for (int r = 0; r < repeats; ++r) {
      const auto start = std::chrono::steady_clock::now();
      for (std::size_t i = 0; i < bytes.size(); ++i) {
        const auto decoded = mll::image::decode_memory(bytes[i], files[i], options);
        if (decode_only) {
          checksum += decoded.image.data()[0];
          continue;
        }
        const auto crop = mll::image::resize_and_crop_u8(decoded, spec);
        if (crop_only) {
          checksum += crop.data()[0];
        } else {
          mll::image::to_normalized_chw(crop, spec.mean, spec.std, tensor.data());
          checksum += tensor[0];
        }
      }
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      rates.push_back(static_cast<double>(bytes.size()) / seconds);
      std::printf("repeat %d %.1f\n", r, rates.back());
    }
    std::sort(rates.begin(), rates.end());
    std::printf("median %.1f\nchecksum %.3f\n", rates[rates.size() / 2], checksum);
    return 0;
  } catch (const mll::Error& e) {
    std::fprintf(stderr, "mll_preprocess_bench: %s\n", e.what());
    return static_cast<int>(e.code());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mll_preprocess_bench: %s\n", e.what());
    return 70;
  }
}
