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
#include <map>
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

// A vector element type whose default construction leaves the value uninitialised: a batch buffer
// is written by the workers before anyone reads it, so zero-filling it first (19 MB for 32 images
// at 224 px) would only cost page faults and a memset on the thread that allocates it.
struct Uninitialized {
  float value;
  Uninitialized() noexcept {}  // NOLINT: leaves `value` uninitialised on purpose
};
static_assert(sizeof(Uninitialized) == sizeof(float));

class Prefetcher {
 public:
  struct Batch {
    std::int64_t first = 0;  // position of the batch's first image in the path list
    int count = 0;           // images in this batch
    // count x 3 x H x W, normalised (the buffer may be longer: reuse one Batch across next()
    // calls, its memory is recycled)
    std::vector<Uninitialized> buffer;
    float* pixels() noexcept { return reinterpret_cast<float*>(buffer.data()); }
  };

  // Starts `threads` workers that keep at most `depth` batches decoded ahead of the consumer,
  // and beyond them up to `ahead_bytes` of uint8 crops (normalised into a batch when its slot
  // frees): while the consumer is busy elsewhere (loading a model), decoding goes on.
  // With a `cache` (rows[i]: the probe row of paths[i]), crops are read from it on a hit and
  // written to it otherwise (after start_writing(); a failing cache write is logged once and
  // leaves the cache file incomplete, which finish_writing() then discards). The cache must
  // outlive the Prefetcher. With `checks` (one per path), each decoded file's bytes must still
  // be what they were (DataError from next() naming it otherwise). Throws UsageError for
  // non-positive sizes or negative `ahead_bytes`.
  Prefetcher(std::vector<std::string> paths, image::PreprocessSpec spec, int batch_size,
             int threads, int depth, std::int64_t ahead_bytes = 0, CropCache* cache = nullptr,
             std::vector<std::int64_t> rows = {}, std::vector<ImageCheck> checks = {});
  // Stops and joins the workers (also when batches were left unread).
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The next batch, blocking until it is ready; false after the last one. Rethrows the error of
  // an image that failed to decode (DataError naming the file).
  bool next(Batch& batch);

  // Blocks until every worker has finished its first image (or found none to claim).
  // Call it before loading a shared library with thread-local variables, such as the model
  // engine: glibc (2.35 and later) holds its TLS lock while dlopen maps and relocates a library
  // (libtorch: ~0.3 s), and a thread's first use of a dlopen'ed library's thread-local state
  // (libjpeg-turbo's SIMD flags) waits for that lock, so workers started just before the load
  // would sit idle through it.
  void wait_until_started();

  // Images decoded so far (each path at most once; cache hits are not decodes).
  std::int64_t decoded() const;

 private:
  // A crop decoded ahead of the window, or the error of its image.
  struct Stashed {
    image::RgbImage crop;
    std::exception_ptr error;
  };

  void work();
  // Reads (from the cache) or decodes image `index`; `decoded`: whether it was not a cache hit.
  image::RgbImage produce(std::int64_t index, std::unique_lock<std::mutex>& reading, bool& decoded);
  // Normalises image `index` into its slot (which must be in the window) or records its error.
  void deliver(std::int64_t index, const image::RgbImage& crop, std::exception_ptr error);
  // Under mutex_: whether image `index`'s batch has a slot now; whether a worker may claim the
  // next image (in the window, or room for one more crop ahead); whether a stashed crop can go
  // to its slot.
  bool in_window(std::int64_t index) const;
  bool claimable() const;
  bool stash_ready() const;
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
  int started_ = 0;                        // workers past their first image
  std::int64_t in_flight_ = 0;             // images claimed and not yet finished
  std::int64_t ahead_capacity_ = 0;        // crops that may be claimed ahead of the window
  std::int64_t ahead_ = 0;                 // claimed ahead and not yet in a slot
  std::map<std::int64_t, Stashed> stash_;  // by image index
  bool stopping_ = false;
  std::vector<std::vector<Uninitialized>> slots_;  // depth buffers, batch b in slot b % depth
  std::vector<int> slot_done_;                     // images finished in each slot
  std::vector<std::exception_ptr> slot_error_;
  std::vector<std::thread> workers_;
};

}  // namespace mll::feed
