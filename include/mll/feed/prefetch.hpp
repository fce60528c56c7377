// Decoding and preprocessing ahead of the model, on background threads, so that the model never
// waits for the CPU (issue: "the model never waits"). Images come out in batches, in order.
// Images are files or members of tar shards (archive/image_ref.hpp). Members are claimed and read
// one at a time in path order, so each shard is read front to back whatever the thread count,
// and decoded in parallel (docs/probe.md, "Sequential reading").
// Not collective. The consumer side (next()) is for one thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mll/image/preprocess.hpp"

namespace mll::archive {
class ImageReader;
}

namespace mll::feed {

class CropCache;

// What a probe image's file was when the probe set was built (size in bytes, 64-bit digest of
// its bytes: probe::file_digest): an image whose file no longer matches is an error, not data.
struct ImageCheck {
  std::int64_t size = -1;   // -1: not recorded
  std::int64_t digest = 0;  // meaningful when size >= 0
};

class Prefetcher {
 public:
  struct Batch {
    std::int64_t first = 0;  // position of the batch's first image in the path list
    int count = 0;           // images in this batch
    // count x 3 x H x W, normalised (the buffer may be longer: reuse one Batch across next()
    // calls, its memory is recycled)
    std::vector<float> pixels;
  };

  // Starts `threads` workers that keep at most `depth` batches decoded ahead of the consumer.
  // With a `cache` (rows[i]: the probe row of paths[i]), crops are read from it on a hit and
  // written to it otherwise (after start_writing(); a failing cache write is logged once and
  // leaves the cache file incomplete, which finish_writing() then discards). The cache must
  // outlive the Prefetcher. With `checks` (one per path), each decoded file's bytes must still
  // be what they were (DataError from next() naming it otherwise). Throws UsageError for
  // non-positive sizes.
  Prefetcher(std::vector<std::string> paths, image::PreprocessSpec spec, int batch_size,
             int threads, int depth, CropCache* cache = nullptr,
             std::vector<std::int64_t> rows = {}, std::vector<ImageCheck> checks = {});
  // Stops and joins the workers (also when batches were left unread).
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The next batch, blocking until it is ready; false after the last one. Rethrows the error of
  // an image that failed to decode (DataError naming the file).
  bool next(Batch& batch);

  // Images decoded so far (each path at most once; cache hits are not decodes).
  std::int64_t decoded() const;

 private:
  void work();
  void write_to_cache(std::int64_t row, const image::RgbImage& crop);
  std::string read(std::int64_t index);
  image::RgbImage decode(std::int64_t index, const std::string& bytes) const;

  std::vector<std::string> paths_;
  image::PreprocessSpec spec_;
  CropCache* cache_;
  std::vector<std::int64_t> rows_;
  std::vector<ImageCheck> checks_;
  bool cache_write_failed_ = false;  // guarded by mutex_
  int batch_size_;
  int depth_;
  std::int64_t batches_;
  std::size_t image_floats_;

  // Set when some image is a shard member: images are then claimed and read under read_mutex_,
  // through reader_, in index order. Lock order: read_mutex_ before mutex_.
  bool sequential_ = false;
  std::mutex read_mutex_;
  std::unique_ptr<archive::ImageReader> reader_;

  mutable std::mutex mutex_;
  std::condition_variable work_ready_, batch_ready_;
  std::int64_t next_image_ = 0;  // next image index a worker claims
  std::int64_t next_batch_ = 0;  // next batch the consumer takes
  std::int64_t decoded_ = 0;
  bool stopping_ = false;
  std::vector<std::vector<float>> slots_;  // depth buffers, batch b in slot b % depth
  std::vector<int> slot_done_;             // images finished in each slot
  std::vector<std::exception_ptr> slot_error_;
  std::vector<std::thread> workers_;
};

}  // namespace mll::feed
