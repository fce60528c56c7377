// What checking the image cache's crops costs (docs/benchmarks.md, "Image cache checksums"):
// the per-crop digest of the old file version (SHA-256's first 8 bytes) against the XXH3-64
// checksum of the current one, over distinct 224 x 224 x 3 crops in memory, one core, median of
// 5 passes each, interleaved.
// Usage: mll_checksum_bench [CROPS]   (default 2048)
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "mll/core/hash.hpp"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const long crops = argc > 1 ? std::atol(argv[1]) : 2048;
  constexpr std::size_t kCropBytes = 224 * 224 * 3;
  std::vector<unsigned char> data(static_cast<std::size_t>(crops) * kCropBytes);
  std::uint32_t x = 12345;  // distinct bytes (xorshift), so no pass reuses another's cache lines
  for (auto& byte : data) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    byte = static_cast<unsigned char>(x);
  }
  std::vector<double> sha, xxh;
  std::uint64_t sink = 0;  // keeps the hashes from being optimised away
  for (int pass = 0; pass < 5; ++pass) {
    auto t0 = std::chrono::steady_clock::now();
    for (long c = 0; c < crops; ++c) {
      sink ^= static_cast<std::uint64_t>(
          mll::sha256_prefix64(data.data() + static_cast<std::size_t>(c) * kCropBytes, kCropBytes));
    }
    auto t1 = std::chrono::steady_clock::now();
    for (long c = 0; c < crops; ++c) {
      sink ^= mll::checksum64(data.data() + static_cast<std::size_t>(c) * kCropBytes, kCropBytes);
    }
    auto t2 = std::chrono::steady_clock::now();
    sha.push_back(std::chrono::duration<double>(t1 - t0).count());
    xxh.push_back(std::chrono::duration<double>(t2 - t1).count());
  }
  const double gb = static_cast<double>(data.size()) / 1e9;
  std::printf("%ld crops (%.0f MB): sha256 %.3f s (%.2f GB/s), xxh3 %.3f s (%.2f GB/s): %.1fx\n",
              crops, gb * 1e3, median(sha), gb / median(sha), median(xxh), gb / median(xxh),
              median(sha) / median(xxh));
  std::printf("(%016llx)\n", static_cast<unsigned long long>(sink));
  return 0;
}
