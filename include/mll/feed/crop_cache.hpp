// An on-disk cache of preprocessed probe images (mll label --image-cache DIR): the uint8 crops
// (after resize and center crop, before normalisation: image::resize_and_crop_u8) of one shard of
// probe images for one preprocessing config, so that later runs and added models of that config
// skip decoding entirely. docs/labeling.md describes the files.
//
// One file per (config, shard): DIR/<config>/<begin>-<end>.crops, written under a temporary name
// and renamed when complete, so a kill never leaves a torn file under the real name. Its header
// carries a fingerprint of the config and of every image (path, size, modification time); a file
// whose fingerprint does not match is ignored (and replaced when the shard is decoded again).
// Readers and writers are thread-safe (pread / pwrite). Nothing here is collective.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mll/image/preprocess.hpp"

namespace mll::feed {

class CropCache {
 public:
  // The cache of rows [begin, end) of the probe set (`paths`: those rows' files) for one config
  // under `dir`. Throws UsageError when `dir` cannot be created, DataError when a probe image is
  // missing (its fingerprint needs its size and time).
  CropCache(const std::string& dir, const image::PreprocessSpec& spec, std::int64_t begin,
            std::int64_t end, const std::vector<std::string>& paths);
  ~CropCache();
  CropCache(const CropCache&) = delete;
  CropCache& operator=(const CropCache&) = delete;

  // Whether a valid cache file for these rows exists (opened for reading if so).
  bool hit() const noexcept;
  // Reads row `row` (begin <= row < end) into `out` (height x width x 3 bytes). Only after hit().
  // Throws IoError when the file cannot be read.
  void read(std::int64_t row, std::uint8_t* out) const;

  // Starts writing a new file (after a miss). Throws IoError when it cannot be created.
  void start_writing();
  // Stores row `row`'s crop. Throws IoError when the write fails.
  void write(std::int64_t row, const image::RgbImage& crop);
  // Publishes the file if every row was written; otherwise discards it. Throws IoError.
  void finish_writing();

  const std::string& path() const noexcept;

  // Removes the cache files of one config under `dir` (the shard files this class writes, and
  // temporaries of killed runs; nothing else), then its folder and `dir` when they are left empty.
  // Returns the number of files removed. Does not throw: what cannot be removed stays.
  static std::size_t remove_config(const std::string& dir, const image::PreprocessSpec& spec);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mll::feed
