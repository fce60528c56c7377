// The class-text embedding cache: exact round trip, keyed on the model's sha256 and tokenizer,
// damaged files ignored with a warning (never parsed as data), unwritable places only warned
// about. And the default rule that picks the matching text towers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "mll/core/fs.hpp"
#include "mll/core/hash.hpp"
#include "mll/core/log.hpp"
#include "mll/select/match.hpp"
#include "mll/select/text_cache.hpp"
#include "test_paths.hpp"

namespace mll::select {
namespace {

namespace stdfs = std::filesystem;

const TextCacheKey kKey{"m-a", std::string(64, 'a'), "clip-bpe 77 "};

std::vector<float> row_of(float seed) {
  // Values whose every bit matters: a round trip through text would lose some.
  return {seed, std::nextafter(seed, 2.0f), -seed / 3.0f, 1e-30f};
}

// The warnings the log wrote while `run` ran.
template <typename F>
std::string logged(const test::ScratchDir& dir, F&& run) {
  const std::string path = dir / "log.txt";
  stdfs::remove(path);
  log::set_file(path);
  run();
  log::set_file("");
  std::error_code ec;
  return stdfs::exists(path, ec) ? fs::read_file(path) : std::string();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

TEST(TextCache, RoundTripsEveryBitAndKeepsTextsApart) {
  test::ScratchDir dir;
  const std::string cache_dir = dir / "cache";
  {
    TextCache cache(cache_dir, kKey);
    EXPECT_EQ(cache.size(), 0u);
    EXPECT_EQ(cache.find("a photo of a pug."), nullptr);
    cache.add("a photo of a pug.", row_of(0.1f));
    cache.add("a photo of a pug. ", row_of(0.2f));  // another text: one more space
    cache.add("", row_of(0.3f));
    cache.save();
  }
  EXPECT_TRUE(stdfs::exists(cache_dir + "/m-a.textcache"));
  const TextCache again(cache_dir, kKey);
  ASSERT_EQ(again.size(), 3u);
  EXPECT_EQ(again.dim(), 4);
  ASSERT_NE(again.find("a photo of a pug."), nullptr);
  const auto& row = *again.find("a photo of a pug.");
  const auto expected = row_of(0.1f);
  EXPECT_EQ(std::memcmp(row.data(), expected.data(), 4 * sizeof(float)), 0);
  EXPECT_EQ(*again.find("a photo of a pug. "), row_of(0.2f));
  EXPECT_EQ(*again.find(""), row_of(0.3f));
  EXPECT_EQ(again.file(), cache_dir + "/m-a.textcache");
  // Nothing added: nothing written.
  const auto before = stdfs::last_write_time(again.file());
  again.save();
  EXPECT_EQ(stdfs::last_write_time(again.file()), before);
}

TEST(TextCache, AnotherModelFileOrTokenizerNeverReusesTheVectors) {
  test::ScratchDir dir;
  {
    TextCache cache(dir / "c", kKey);
    cache.add("x", row_of(0.5f));
    cache.save();
  }
  TextCacheKey relabeled = kKey;
  relabeled.model_sha256 = std::string(64, 'b');
  TextCache other(dir / "c", relabeled);
  EXPECT_EQ(other.size(), 0u);
  TextCacheKey tokenizer = kKey;
  tokenizer.tokenizer = "clip-bpe 64 ";
  EXPECT_EQ(TextCache(dir / "c", tokenizer).size(), 0u);
  // The relabeled model's vectors replace the old ones.
  other.add("x", row_of(0.7f));
  other.save();
  EXPECT_EQ(*TextCache(dir / "c", relabeled).find("x"), row_of(0.7f));
  EXPECT_EQ(TextCache(dir / "c", kKey).size(), 0u);
}

TEST(TextCache, DamagedFilesAreIgnoredWithAWarningAndRewritten) {
  test::ScratchDir dir;
  const std::string path = dir / "c/m-a.textcache";
  std::map<std::string, std::vector<float>> rows = {{"x", row_of(0.5f)}, {"y", row_of(0.25f)}};
  const std::string good = TextCache::encode(kKey, 4, rows);
  stdfs::create_directories(dir / "c");
  struct Damage {
    std::string name;
    std::string bytes;
  };
  std::vector<Damage> damages;
  for (const std::size_t at : {std::size_t{3}, good.size() / 2, good.size() - 1}) {
    std::string flipped = good;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x10);
    damages.push_back({"flip at " + std::to_string(at), flipped});
  }
  damages.push_back({"truncated", good.substr(0, good.size() - 5)});
  damages.push_back({"grown", good + "zz"});
  damages.push_back({"header only", good.substr(0, good.find("size "))});
  damages.push_back({"empty", ""});
  damages.push_back({"not ours", "HDF5 or anything else\n"});
  // A payload with a valid checksum that claims more texts than it holds.
  std::string lying = TextCache::encode(kKey, 4, rows);
  damages.push_back(
      {"valid checksum, impossible count", [&] {
         std::string payload = lying.substr(lying.find('\n', lying.find("size ")) + 1);
         const std::size_t count_at =
             3 * 4 + kKey.model_id.size() + kKey.model_sha256.size() + kKey.tokenizer.size() + 4;
         payload[count_at + 7] = 0x7f;
         return std::string("MLL-TEXT-CACHE 1\nsha256 ") + Sha256().update(payload).hex() +
                "\nsize " + std::to_string(payload.size()) + "\n" + payload;
       }()});
  for (const auto& d : damages) {
    write_bytes(path, d.bytes);
    std::size_t size = 99;
    const std::string log = logged(dir, [&] {
      TextCache cache(dir / "c", kKey);
      size = cache.size();
      cache.add("x", row_of(0.5f));
      cache.save();
    });
    EXPECT_EQ(size, 0u) << d.name;
    EXPECT_NE(log.find("corrupt text cache"), std::string::npos) << d.name << ": " << log;
    EXPECT_NE(log.find(path), std::string::npos) << d.name;
    // Rewritten whole: the next reader trusts it and warns no more.
    std::size_t reread = 0;
    const std::string quiet = logged(dir, [&] { reread = TextCache(dir / "c", kKey).size(); });
    EXPECT_EQ(reread, 1u) << d.name;
    EXPECT_EQ(quiet.find("corrupt"), std::string::npos) << d.name;
  }
}

TEST(TextCache, AnUnwritablePlaceOnlyCostsAWarning) {
  test::ScratchDir dir;
  write_bytes(dir / "file", "a regular file, not a folder");
  const std::string log = logged(dir, [&] {
    TextCache cache(dir / "file/cache", kKey);
    cache.add("x", row_of(0.5f));
    EXPECT_NO_THROW(cache.save());
  });
  EXPECT_NE(log.find("class-text embeddings not cached"), std::string::npos) << log;
  TextCache none("", kKey);  // no cache at all
  none.add("x", row_of(0.5f));
  EXPECT_NO_THROW(none.save());
  EXPECT_EQ(none.file(), "");
}

zoo::ModelSpec spec(const std::string& id, std::optional<double> top1, std::int64_t params) {
  zoo::ModelSpec s;
  s.id = id;
  s.imagenet_top1 = top1;
  s.params = params;
  return s;
}

TEST(TextTowerRule, HighestImagenetTop1ThenParamsThenId) {
  const std::vector<zoo::ModelSpec> specs = {spec("c", 0.60, 100), spec("b", std::nullopt, 900),
                                             spec("a", 0.60, 100), spec("d", 0.72, 10),
                                             spec("e", 0.60, 300), spec("f", std::nullopt, 900)};
  // d (0.72); then 0.60 by params: e (300), then a and c (100, by id); then the ones without a
  // figure by params, then id: b, f.
  EXPECT_EQ(rank_text_towers(specs), (std::vector<std::string>{"d", "e", "a", "c", "b", "f"}));
  EXPECT_TRUE(rank_text_towers({}).empty());
}

}  // namespace
}  // namespace mll::select
