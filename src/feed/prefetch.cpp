#include "mll/feed/prefetch.hpp"

#include <algorithm>

#include "mll/archive/image_ref.hpp"
#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/core/hash.hpp"
#include "mll/core/log.hpp"
#include "mll/feed/crop_cache.hpp"
#include "mll/image/image.hpp"

namespace mll::feed {

Prefetcher::Prefetcher(std::vector<std::string> paths, image::PreprocessSpec spec, int batch_size,
                       int threads, int depth, CropCache* cache, std::vector<std::int64_t> rows,
                       std::vector<ImageCheck> checks)
    : paths_(std::move(paths)),
      spec_(std::move(spec)),
      cache_(cache),
      rows_(std::move(rows)),
      checks_(std::move(checks)),
      batch_size_(batch_size),
      depth_(depth) {
  if (batch_size <= 0 || threads <= 0 || depth <= 0) {
    MLL_THROW(UsageError, "prefetch: batch size, threads and depth must be positive");
  }
  MLL_CHECK(cache_ == nullptr || rows_.size() == paths_.size(), "prefetch: ", rows_.size(),
            " cache rows for ", paths_.size(), " images");
  MLL_CHECK(checks_.empty() || checks_.size() == paths_.size(), "prefetch: ", checks_.size(),
            " image checks for ", paths_.size(), " images");
  sequential_ = std::any_of(paths_.begin(), paths_.end(), [](const std::string& path) {
    return archive::parse_member_ref(path).has_value();
  });
  if (sequential_) reader_ = std::make_unique<archive::ImageReader>();
  const auto n = static_cast<std::int64_t>(paths_.size());
  batches_ = (n + batch_size_ - 1) / batch_size_;
  image_floats_ =
      3 * static_cast<std::size_t>(spec_.height) * static_cast<std::size_t>(spec_.width);
  slots_.assign(static_cast<std::size_t>(depth_),
                std::vector<float>(static_cast<std::size_t>(batch_size_) * image_floats_));
  slot_done_.assign(static_cast<std::size_t>(depth_), 0);
  slot_error_.assign(static_cast<std::size_t>(depth_), nullptr);
  for (int t = 0; t < threads; ++t) workers_.emplace_back([this] { work(); });
}

Prefetcher::~Prefetcher() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (auto& worker : workers_) worker.join();
}

std::int64_t Prefetcher::decoded() const {
  std::lock_guard lock(mutex_);
  return decoded_;
}

void Prefetcher::work() {
  const auto n = static_cast<std::int64_t>(paths_.size());
  for (;;) {
    // Held from the claim until the image's bytes are read (shard members only): the claims,
    // and so the reads, then follow index order.
    std::unique_lock<std::mutex> reading;
    if (sequential_) reading = std::unique_lock(read_mutex_);
    std::int64_t index = 0;
    {
      std::unique_lock lock(mutex_);
      // Claim the next image only when its batch fits in the window of `depth` slots.
      work_ready_.wait(lock, [&] {
        return stopping_ || next_image_ >= n || next_image_ / batch_size_ < next_batch_ + depth_;
      });
      if (stopping_ || next_image_ >= n) return;
      index = next_image_++;
    }
    const std::int64_t batch = index / batch_size_;
    const auto slot = static_cast<std::size_t>(batch % depth_);
    const auto position = static_cast<std::size_t>(index % batch_size_);
    std::exception_ptr error;
    bool from_cache = cache_ != nullptr && cache_->hit();
    try {
      // Only this worker writes this image's part of the slot, so no lock is needed here.
      image::RgbImage crop;
      if (from_cache && reading.owns_lock()) reading.unlock();
      if (from_cache) {
        crop = image::RgbImage(spec_.width, spec_.height);
        try {
          cache_->read(rows_[static_cast<std::size_t>(index)], crop.data());
        } catch (const Error& e) {
          log::warn("image cache: ", e.what(), "; decoding instead");
          from_cache = false;
        }
      }
      if (!from_cache) {
        if (sequential_ && !reading.owns_lock()) reading.lock();  // a cache read that failed
        const std::string bytes = read(index);
        if (reading.owns_lock()) reading.unlock();
        crop = decode(index, bytes);
        if (cache_ != nullptr) write_to_cache(rows_[static_cast<std::size_t>(index)], crop);
      }
      image::to_normalized_chw(crop, spec_.mean, spec_.std,
                               slots_[slot].data() + position * image_floats_);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      if (!from_cache) ++decoded_;
      if (error && !slot_error_[slot]) slot_error_[slot] = error;
      ++slot_done_[slot];
    }
    batch_ready_.notify_all();
  }
}

std::string Prefetcher::read(std::int64_t index) {
  const std::string& path = paths_[static_cast<std::size_t>(index)];
  // reader_ is used under read_mutex_ only (sequential_).
  return sequential_ ? reader_->read(path) : archive::read_image_bytes(path);
}

image::RgbImage Prefetcher::decode(std::int64_t index, const std::string& bytes) const {
  const std::string& path = paths_[static_cast<std::size_t>(index)];
  const ImageCheck* check = checks_.empty() ? nullptr : &checks_[static_cast<std::size_t>(index)];
  // The bytes are read once, checked, then decoded from memory.
  if (check != nullptr && check->size >= 0 &&
      (static_cast<std::int64_t>(bytes.size()) != check->size ||
       sha256_prefix64(bytes.data(), bytes.size()) != check->digest)) {
    MLL_THROW(DataError, path, ": probe image changed since `mll probe build` (", bytes.size(),
              " bytes now, ", check->size, " recorded, and other content); restore it, or ",
              "rebuild the probe set");
  }
  return image::resize_and_crop_u8(
      image::decode_memory(bytes, path, image::decode_options_for(spec_)), spec_);
}

void Prefetcher::write_to_cache(std::int64_t row, const image::RgbImage& crop) {
  {
    std::lock_guard lock(mutex_);
    if (cache_write_failed_) return;
  }
  try {
    cache_->write(row, crop);
  } catch (const Error& e) {
    // The cache only saves time: labeling goes on without it.
    std::lock_guard lock(mutex_);
    if (!cache_write_failed_) log::warn("image cache not written: ", e.what());
    cache_write_failed_ = true;
  }
}

bool Prefetcher::next(Batch& batch) {
  std::unique_lock lock(mutex_);
  if (next_batch_ >= batches_) return false;
  const auto n = static_cast<std::int64_t>(paths_.size());
  const std::int64_t first = next_batch_ * batch_size_;
  const int count = static_cast<int>(std::min<std::int64_t>(batch_size_, n - first));
  const auto slot = static_cast<std::size_t>(next_batch_ % depth_);
  batch_ready_.wait(lock, [&] { return slot_done_[slot] == count; });
  if (slot_error_[slot]) std::rethrow_exception(slot_error_[slot]);
  batch.first = first;
  batch.count = count;
  // The consumer's previous buffer becomes the slot's: handing a batch over costs no copy under
  // the lock the workers need (a 32-image batch at 224 px is 19 MB).
  batch.pixels.resize(slots_[slot].size());
  batch.pixels.swap(slots_[slot]);
  slot_done_[slot] = 0;
  ++next_batch_;
  lock.unlock();
  work_ready_.notify_all();
  return true;
}

}  // namespace mll::feed
