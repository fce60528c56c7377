// <store>.digests: remembered digests are returned only for files unchanged since they were
// hashed, whatever restores a file's modification time, and never from a damaged line.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "mll/core/hash.hpp"
#include "mll/zoo/digests.hpp"
#include "test_paths.hpp"

namespace mll::zoo {
namespace {

namespace stdfs = std::filesystem;

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class ZooDigests : public ::testing::Test {
 protected:
  std::string file() const { return dir_ / "model.pt"; }
  std::string cache() const { return dir_ / "store.h5.digests"; }
  test::ScratchDir dir_;
};

TEST_F(ZooDigests, RemembersAcrossObjectsAndForgetsAChangedFile) {
  write(file(), "weights one");
  {
    ModelDigests digests(cache());
    EXPECT_EQ(digests.lookup(file()), std::nullopt);
    EXPECT_EQ(file_sha256(file(), digests), sha256_file(file()));
    digests.save();
  }
  ModelDigests again(cache());
  EXPECT_EQ(again.lookup(file()), sha256_file(file()));

  // Other bytes of the same size, the modification time put back (touch -r, rsync -t): the
  // change time still differs.
  const auto mtime = stdfs::last_write_time(file());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  write(file(), "weights two");
  stdfs::last_write_time(file(), mtime);
  EXPECT_EQ(again.lookup(file()), std::nullopt);
  EXPECT_EQ(file_sha256(file(), again), sha256_file(file()));
  EXPECT_EQ(again.lookup(file()), sha256_file(file()));
}

TEST_F(ZooDigests, AFileChangedWhileItWasHashedIsNotRemembered) {
  write(file(), "weights one");
  ModelDigests digests(cache());
  const auto before = ModelDigests::state_of(file());
  ASSERT_TRUE(before.has_value());
  const std::string old_sha = sha256_file(file());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  write(file(), "weights two, longer");  // rewritten during the hash
  digests.remember(file(), old_sha, *before);
  EXPECT_EQ(digests.lookup(file()), std::nullopt);
  digests.remember(file(), sha256_file(file()), *ModelDigests::state_of(file()));
  EXPECT_EQ(digests.lookup(file()), sha256_file(file()));
}

TEST_F(ZooDigests, DamagedLinesAndOtherVersionsAreIgnored) {
  write(file(), "weights");
  {
    ModelDigests digests(cache());
    file_sha256(file(), digests);
    digests.save();
  }
  const std::string good = slurp(cache());
  ASSERT_EQ(good.rfind("mll-digests 2\n", 0), 0u) << good;
  for (std::size_t at = good.find('\n') + 1; at + 1 < good.size(); at += 7) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x01);
    write(cache(), bad);
    EXPECT_EQ(ModelDigests(cache()).lookup(file()), std::nullopt) << "byte " << at;
  }
  write(cache(), good.substr(good.find('\n') + 1));  // no header: an older file
  EXPECT_EQ(ModelDigests(cache()).lookup(file()), std::nullopt);
  write(cache(), good);
  EXPECT_EQ(ModelDigests(cache()).lookup(file()), sha256_file(file()));
}

}  // namespace
}  // namespace mll::zoo
