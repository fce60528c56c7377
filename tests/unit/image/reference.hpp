// The PIL/torchvision references in tests/data/image (written by
// tools/make_preprocess_reference.py) and small comparison helpers.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "mll/core/fs.hpp"
#include "mll/core/hash.hpp"
#include "mll/image/image.hpp"
#include "test_paths.hpp"

namespace mll::test {

inline std::string image_data(const std::string& name) {
  return source_dir() + "/tests/data/image/" + name;
}

inline const nlohmann::json& image_reference() {
  static const nlohmann::json ref =
      nlohmann::json::parse(fs::read_file(image_data("reference.json")));
  return ref;
}

inline std::string sha256_of(const void* data, std::size_t size) {
  Sha256 h;
  h.update(data, size);
  return h.hex();
}

inline std::string sha256_of(const image::RgbImage& im) {
  return sha256_of(im.data(), im.size_bytes());
}

struct PixelDiff {
  int max = 0;
  std::size_t differing = 0;
  double mean = 0;
};

// Assumes equal sizes (checked by the callers first).
inline PixelDiff pixel_diff(const image::RgbImage& a, const image::RgbImage& b) {
  PixelDiff d;
  double total = 0;
  for (std::size_t i = 0; i < a.size_bytes(); ++i) {
    const int diff = std::abs(int{a.data()[i]} - int{b.data()[i]});
    d.max = std::max(d.max, diff);
    d.differing += diff != 0;
    total += diff;
  }
  d.mean = a.size_bytes() ? total / static_cast<double>(a.size_bytes()) : 0.0;
  return d;
}

}  // namespace mll::test
