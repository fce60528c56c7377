// Tar archives through libarchive: members listed with offsets, read back by offset in any order,
// corrupt / truncated / compressed archives refused with the archive named; member references.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "mll/archive/image_ref.hpp"
#include "mll/archive/tar.hpp"
#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "test_paths.hpp"

namespace mll::archive {
namespace {

using test::ScratchDir;

std::string bytes_of(std::size_t n, int seed) {
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<char>((i * 31 + seed * 7) % 251);
  return out;
}

// Three members, one with a name too long for a ustar header (a pax header carries it).
std::vector<std::pair<std::string, std::string>> sample_members() {
  return {{"a/one.jpg", bytes_of(1000, 1)},
          {"a/one.cls", "3\n"},
          {std::string(120, 'x') + "/long.png", bytes_of(70000, 2)},
          {"b/two.jpg", bytes_of(513, 3)}};
}

std::string write_sample(const ScratchDir& dir) {
  const std::string path = dir / "shard.tar";
  TarWriter writer(path);
  for (const auto& [name, data] : sample_members()) writer.add(name, data);
  writer.finish();
  return path;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Tar, ListsMembersInOrderAndReadsEachByOffsetInAnyOrder) {
  ScratchDir dir;
  const std::string path = write_sample(dir);
  const auto members = list_members(path, [](const std::string& n) { return n == "a/one.cls"; });
  const auto expected = sample_members();
  ASSERT_EQ(members.size(), expected.size());
  for (std::size_t i = 0; i < members.size(); ++i) {
    EXPECT_EQ(members[i].name, expected[i].first);
    EXPECT_EQ(members[i].size, static_cast<std::int64_t>(expected[i].second.size()));
    if (i > 0) {
      EXPECT_GT(members[i].offset, members[i - 1].offset);
    }
  }
  EXPECT_EQ(members[0].offset, 0);
  EXPECT_EQ(members[1].bytes, "3\n");  // asked for
  EXPECT_TRUE(members[0].bytes.empty());

  TarReader reader(path);
  for (const std::size_t i : {3, 0, 2, 1, 2}) {
    EXPECT_EQ(reader.read(members[i].offset, members[i].name), expected[i].second) << i;
  }
}

TEST(Tar, AWrongNameOrOffsetIsADataErrorNamingTheShard) {
  ScratchDir dir;
  const std::string path = write_sample(dir);
  const auto members = list_members(path);
  TarReader reader(path);
  auto what = error_of([&] { reader.read(members[0].offset, "a/other.jpg"); });
  EXPECT_NE(what.find(path), std::string::npos) << what;
  EXPECT_NE(what.find("rewritten"), std::string::npos) << what;
  what = error_of([&] { reader.read(members[0].offset + 512, members[0].name); });
  EXPECT_NE(what.find("a/one.jpg"), std::string::npos) << what;
  what = error_of([&] { reader.read(1 << 30, members[0].name); });
  EXPECT_NE(what.find("beyond the end"), std::string::npos) << what;
  EXPECT_THROW(TarReader(dir / "missing.tar"), DataError);
}

TEST(Tar, CorruptTruncatedAndCompressedArchivesAreRefusedWithTheFileNamed) {
  ScratchDir dir;
  const std::string path = write_sample(dir);
  const std::string good = fs::read_file(path);
  const auto members = list_members(path);

  // A damaged header in the middle: the error names the archive and the last good member.
  std::string damaged = good;
  for (int i = 0; i < 100; ++i) damaged[static_cast<std::size_t>(members[3].offset) + i] = '\x7f';
  std::ofstream(dir / "damaged.tar", std::ios::binary) << damaged;
  auto what = error_of([&] { list_members(dir / "damaged.tar"); });
  EXPECT_NE(what.find(dir / "damaged.tar"), std::string::npos) << what;
  EXPECT_NE(what.find("corrupt"), std::string::npos) << what;
  EXPECT_THROW(list_members(dir / "damaged.tar"), DataError);

  // Cut inside the last member's data, whether or not the data is read.
  std::ofstream(dir / "cut.tar", std::ios::binary)
      << good.substr(0, static_cast<std::size_t>(members[3].offset) + 512 + 100);
  EXPECT_THROW(list_members(dir / "cut.tar"), DataError);
  EXPECT_THROW(list_members(dir / "cut.tar", [](const std::string&) { return true; }), DataError);
  EXPECT_THROW(TarReader(dir / "cut.tar").read(members[3].offset, members[3].name), DataError);

  // Not a tar at all, and a gzip stream (compressed shards have no member offsets).
  std::ofstream(dir / "text.tar") << "hello, this is not an archive\n";
  what = error_of([&] { list_members(dir / "text.tar"); });
  EXPECT_NE(what.find("not an uncompressed tar"), std::string::npos) << what;
  std::ofstream(dir / "gz.tar", std::ios::binary)
      << std::string("\x1f\x8b\x08\x00\x00\x00", 6) << std::string(600, '\0');
  EXPECT_THROW(list_members(dir / "gz.tar"), DataError);
  EXPECT_THROW(list_members(dir / "none.tar"), DataError);
}

TEST(Tar, AnUnfinishedWriterLeavesNothingUnderTheName) {
  ScratchDir dir;
  {
    TarWriter writer(dir / "partial.tar");
    writer.add("a.jpg", "xyz");
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "partial.tar"));
  std::size_t left = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++left;
  }
  EXPECT_EQ(left, 0u);
}

TEST(ImageRef, MemberReferencesRoundTripAndSortInArchiveOrder) {
  const std::string ref = member_ref("shards/000003.tar", 1536, "n01440764/x_1.jpg");
  EXPECT_EQ(ref, "shards/000003.tar:000000001536:n01440764/x_1.jpg");
  const auto parsed = parse_member_ref(ref);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->archive, "shards/000003.tar");
  EXPECT_EQ(parsed->offset, 1536);
  EXPECT_EQ(parsed->member, "n01440764/x_1.jpg");
  EXPECT_LT(member_ref("s.tar", 1536, "z.jpg"), member_ref("s.tar", 10240, "a.jpg"));
  for (const std::string plain : {"images/n01440764/a.jpg", "/data/x.tar", "a.tar:12",
                                  "a.tar::x.jpg", "a.tar:1x:y.jpg", "a.tar:12:"}) {
    EXPECT_FALSE(parse_member_ref(plain)) << plain;
  }
  // The first `.tar:DIGITS:` splits: a member name may contain anything after it.
  const auto odd = parse_member_ref("d/a.tar:000000000000:b.tar:000000000001:c.jpg");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->archive, "d/a.tar");
  EXPECT_EQ(odd->member, "b.tar:000000000001:c.jpg");
}

TEST(ImageRef, ReadsFilesAndMembersAndStampsMembersWithTheirShard) {
  ScratchDir dir;
  const std::string path = write_sample(dir);
  const auto members = list_members(path);
  std::ofstream(dir / "plain.jpg", std::ios::binary) << "plain bytes";
  ImageReader reader;
  EXPECT_EQ(reader.read(dir / "plain.jpg"), "plain bytes");
  for (const auto& m : members) {
    const std::string ref = member_ref(path, m.offset, m.name);
    EXPECT_EQ(reader.read(ref), read_image_bytes(ref));
    EXPECT_EQ(stamp(ref).size, static_cast<std::int64_t>(std::filesystem::file_size(path)));
  }
  EXPECT_EQ(reader.read(member_ref(path, members[0].offset, members[0].name)),
            sample_members()[0].second);
  EXPECT_THROW(reader.read(dir / "missing.jpg"), DataError);
  EXPECT_THROW(stamp(member_ref(dir / "missing.tar", 0, "a.jpg")), DataError);
}

}  // namespace
}  // namespace mll::archive
