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
                       int threads, int depth, std::int64_t ahead_bytes, CropCache* cache,
                       std::vector<std::int64_t> rows, std::vector<ImageCheck> checks)
    : paths_(std::move(paths)),
      spec_(std::move(spec)),
      cache_(cache),
      rows_(std::move(rows)),
      checks_(std::move(checks)),
      batch_size_(batch_size),
      depth_(depth) {
  if (batch_size <= 0 || threads <= 0 || depth <= 0 || ahead_bytes < 0) {
    MLL_THROW(UsageError, "prefetch: batch size, threads and depth must be positive, the ",
              "memory for crops decoded ahead not negative");
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
  slots_.resize(static_cast<std::size_t>(depth_));
  for (auto& slot : slots_) slot.resize(static_cast<std::size_t>(batch_size_) * image_floats_);
  ahead_capacity_ = ahead_bytes / static_cast<std::int64_t>(3 * spec_.height * spec_.width);
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

void Prefetcher::wait_until_started() {
  std::unique_lock lock(mutex_);
  // Or until no worker can start before the consumer takes a batch (more workers than images
  // the window and the stash admit, or than images).
  batch_ready_.wait(lock, [&] {
    return started_ == static_cast<int>(workers_.size()) || (in_flight_ == 0 && !claimable());
  });
}

bool Prefetcher::in_window(std::int64_t index) const {
  return index / batch_size_ < next_batch_ + depth_;
}

bool Prefetcher::claimable() const {
  return next_image_ < static_cast<std::int64_t>(paths_.size()) &&
         (in_window(next_image_) || ahead_ < ahead_capacity_);
}

bool Prefetcher::stash_ready() const { return !stash_.empty() && in_window(stash_.begin()->first); }

void Prefetcher::work() {
  bool first = true;
  for (;;) {
    // Held from the claim until the image's bytes are read (shard members only): the claims,
    // and so the reads, then follow index order.
    std::unique_lock<std::mutex> reading;
    if (sequential_) reading = std::unique_lock(read_mutex_);
    std::int64_t index = 0;
    bool ahead = false;
    {
      std::unique_lock lock(mutex_);
      // Workers stay until the destructor, also when every image is claimed: a crop decoded
      // ahead still needs one to normalise it into its slot once the window reaches it.
      work_ready_.wait(lock, [&] { return stopping_ || stash_ready() || claimable(); });
      if (stopping_) return;
      if (stash_ready()) {
        // A crop decoded ahead whose batch is now in the window: normalise it into its slot.
        auto node = stash_.extract(stash_.begin());
        --ahead_;
        lock.unlock();
        work_ready_.notify_one();  // room for one more crop ahead
        if (reading.owns_lock()) reading.unlock();
        deliver(node.key(), node.mapped().crop, node.mapped().error);
        continue;
      }
      index = next_image_++;  // claimable()
      ++in_flight_;
      ahead = !in_window(index);
      if (ahead) ++ahead_;
    }
    image::RgbImage crop;
    bool decoded = false;
    std::exception_ptr error;
    try {
      crop = produce(index, reading, decoded);
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      if (decoded) ++decoded_;
      --in_flight_;
      if (first) ++started_;
      // The window may have reached an image claimed ahead while it was decoded.
      if (ahead && !in_window(index)) {
        stash_.emplace(index, Stashed{std::move(crop), error});
        ahead = false;
        index = -1;
      } else if (ahead) {
        --ahead_;
      }
    }
    first = false;
    if (index >= 0) {
      deliver(index, crop, error);
    } else {
      batch_ready_.notify_all();  // a worker's start counts for wait_until_started()
    }
  }
}

image::RgbImage Prefetcher::produce(std::int64_t index, std::unique_lock<std::mutex>& reading,
                                    bool& decoded) {
  if (cache_ != nullptr && cache_->hit()) {
    if (reading.owns_lock()) reading.unlock();
    image::RgbImage crop(spec_.width, spec_.height);
    try {
      cache_->read(rows_[static_cast<std::size_t>(index)], crop.data());
      return crop;
    } catch (const Error& e) {
      log::warn("image cache: ", e.what(), "; decoding instead");
    }
    if (sequential_) reading.lock();
  }
  decoded = true;  // an attempt counts, also one that fails
  const std::string bytes = read(index);
  if (reading.owns_lock()) reading.unlock();
  image::RgbImage crop = decode(index, bytes);
  // A damaged crop of a cache file being read is decoded again; only a file being written (a
  // miss) takes crops.
  if (cache_ != nullptr && !cache_->hit()) {
    write_to_cache(rows_[static_cast<std::size_t>(index)], crop);
  }
  return crop;
}

void Prefetcher::deliver(std::int64_t index, const image::RgbImage& crop,
                         std::exception_ptr error) {
  const std::int64_t batch = index / batch_size_;
  const auto slot = static_cast<std::size_t>(batch % depth_);
  const auto position = static_cast<std::size_t>(index % batch_size_);
  if (!error) {
    // Only this worker writes this image's part of the slot, so no lock is needed here.
    try {
      image::to_normalized_chw(
          crop, spec_.mean, spec_.std,
          reinterpret_cast<float*>(slots_[slot].data()) + position * image_floats_);
    } catch (...) {
      error = std::current_exception();
    }
  }
  {
    std::lock_guard lock(mutex_);
    if (error && !slot_error_[slot]) slot_error_[slot] = error;
    ++slot_done_[slot];
  }
  batch_ready_.notify_all();
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
  batch.buffer.resize(slots_[slot].size());
  batch.buffer.swap(slots_[slot]);
  slot_done_[slot] = 0;
  ++next_batch_;
  lock.unlock();
  work_ready_.notify_all();
  return true;
}

}  // namespace mll::feed
