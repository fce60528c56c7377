// The prefetcher: batches in order with exactly the pixels of the preprocessing path, crops
// decoded ahead of the window while the consumer is busy (bounded by their memory), errors in the
// batch of their image, no wait for workers that cannot start.
#include "mll/feed/prefetch.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "../../common/test_paths.hpp"
#include "mll/core/error.hpp"
#include "mll/image/image.hpp"
#include "mll/image/preprocess.hpp"

namespace mll::feed {
namespace {

constexpr int kSize = 8;  // the model input: kSize x kSize

image::PreprocessSpec spec() { return image::PreprocessSpec::square(kSize); }

std::int64_t crop_bytes() { return 3 * kSize * kSize; }

// `n` PNGs of 12 x 10 pixels, each with its own pattern.
std::vector<std::string> make_images(const std::string& dir, int n) {
  std::vector<std::string> paths;
  for (int i = 0; i < n; ++i) {
    image::RgbImage img(12, 10);
    for (std::size_t k = 0; k < img.size_bytes(); ++k) {
      img.data()[k] = static_cast<std::uint8_t>((k * 7 + static_cast<std::size_t>(i) * 31) % 256);
    }
    paths.push_back(dir + "/" + std::to_string(i) + ".png");
    image::write_png(paths.back(), img);
  }
  return paths;
}

std::vector<float> expected_input(const std::string& path) {
  return image::preprocess(image::decode_file(path), spec());
}

// Takes every batch and checks its images against the preprocessing path.
void expect_all_batches(Prefetcher& prefetcher, const std::vector<std::string>& paths,
                        int batch_size) {
  Prefetcher::Batch batch;
  std::int64_t next = 0;
  const std::size_t floats = 3 * kSize * kSize;
  while (prefetcher.next(batch)) {
    ASSERT_EQ(batch.first, next);
    ASSERT_EQ(batch.count,
              std::min<std::int64_t>(batch_size, static_cast<std::int64_t>(paths.size()) - next));
    for (int i = 0; i < batch.count; ++i) {
      const auto want = expected_input(paths[static_cast<std::size_t>(next + i)]);
      const std::vector<float> got(batch.pixels() + i * floats, batch.pixels() + (i + 1) * floats);
      ASSERT_EQ(got, want) << "image " << next + i;
    }
    next += batch.count;
  }
  EXPECT_EQ(next, static_cast<std::int64_t>(paths.size()));
  EXPECT_EQ(prefetcher.decoded(), static_cast<std::int64_t>(paths.size()));
}

// Polls `decoded()` until it reaches `count` (generous deadline: a loaded machine is slow).
void wait_for_decoded(const Prefetcher& prefetcher, std::int64_t count) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
  while (prefetcher.decoded() < count && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(prefetcher.decoded(), count);
}

TEST(Prefetch, BatchesArriveInOrderWithTheExactPixels) {
  test::ScratchDir dir;
  const auto paths = make_images(dir.path(), 23);
  struct Case {
    int batch, threads, depth;
    std::int64_t ahead_crops;
  };
  for (const Case c : {Case{4, 1, 1, 0}, Case{3, 3, 2, 0}, Case{5, 2, 1, 7}, Case{1, 4, 3, 100},
                       Case{32, 2, 4, 0}}) {
    SCOPED_TRACE(testing::Message() << "batch " << c.batch << ", threads " << c.threads
                                    << ", depth " << c.depth << ", ahead " << c.ahead_crops);
    Prefetcher prefetcher(paths, spec(), c.batch, c.threads, c.depth, c.ahead_crops * crop_bytes());
    prefetcher.wait_until_started();
    expect_all_batches(prefetcher, paths, c.batch);
  }
}

TEST(Prefetch, DecodesAheadOfTheWindowUpToItsMemoryWhileTheConsumerIsBusy) {
  test::ScratchDir dir;
  const auto paths = make_images(dir.path(), 40);
  // Window: 2 batches of 4 = 8 images; beyond it 10 crops (plus a part of one: not a whole crop).
  Prefetcher prefetcher(paths, spec(), 4, 3, 2, 10 * crop_bytes() + crop_bytes() / 2);
  wait_for_decoded(prefetcher, 18);
  // The workers are now blocked: nothing more is decoded until a batch is taken.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(prefetcher.decoded(), 18);
  Prefetcher::Batch batch;
  ASSERT_TRUE(prefetcher.next(batch));
  wait_for_decoded(prefetcher, 22);
  // The rest, in order and exact (the first batch again from a fresh prefetcher).
  Prefetcher again(paths, spec(), 4, 3, 2, 10 * crop_bytes());
  expect_all_batches(again, paths, 4);
}

TEST(Prefetch, WithoutMemoryAheadOnlyTheWindowIsDecoded) {
  test::ScratchDir dir;
  const auto paths = make_images(dir.path(), 20);
  Prefetcher prefetcher(paths, spec(), 4, 2, 2, 0);
  wait_for_decoded(prefetcher, 8);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(prefetcher.decoded(), 8);
}

TEST(Prefetch, AnUnreadableImageDecodedAheadFailsItsOwnBatch) {
  test::ScratchDir dir;
  auto paths = make_images(dir.path(), 16);
  std::ofstream(paths[13], std::ios::binary | std::ios::trunc) << "not an image";
  Prefetcher prefetcher(paths, spec(), 4, 2, 1, 100 * crop_bytes());
  wait_for_decoded(prefetcher, 16);  // all of it decoded (or tried) ahead
  Prefetcher::Batch batch;
  for (int b = 0; b < 3; ++b) ASSERT_TRUE(prefetcher.next(batch)) << "batch " << b;
  try {
    prefetcher.next(batch);
    FAIL() << "the batch of the unreadable image was delivered";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("13.png"), std::string::npos) << e.what();
  }
}

TEST(Prefetch, WaitUntilStartedDoesNotWaitForWorkersThatCannotStart) {
  test::ScratchDir dir;
  const auto paths = make_images(dir.path(), 3);
  {
    // 8 workers, a window of one 1-image batch, nothing ahead: 7 cannot start.
    Prefetcher prefetcher(paths, spec(), 1, 8, 1, 0);
    prefetcher.wait_until_started();
    expect_all_batches(prefetcher, paths, 1);
  }
  {
    // 8 workers for 3 images.
    Prefetcher prefetcher(paths, spec(), 2, 8, 4, 100 * crop_bytes());
    prefetcher.wait_until_started();
    expect_all_batches(prefetcher, paths, 2);
  }
}

TEST(Prefetch, RefusesNegativeMemoryAhead) {
  EXPECT_THROW(Prefetcher({}, spec(), 4, 1, 1, -1), UsageError);
}

}  // namespace
}  // namespace mll::feed
