// Webdataset shards: spec expansion (folder, brace patterns), samples grouped by key, classes
// from .cls / JSON / classnames.txt, and one-line errors for bad samples.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "mll/archive/image_ref.hpp"
#include "mll/archive/tar.hpp"
#include "mll/archive/webdataset.hpp"
#include "mll/core/error.hpp"
#include "test_paths.hpp"

namespace mll::archive {
namespace {

using test::ScratchDir;
using Members = std::vector<std::pair<std::string, std::string>>;

void write_shard(const std::string& path, const Members& members) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  TarWriter writer(path);
  for (const auto& [name, data] : members) writer.add(name, data);
  writer.finish();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ShardSpec, FoldersAndBracePatternsExpandInOrder) {
  ScratchDir dir;
  for (const char* name : {"000000.tar", "000001.tar", "000002.tar", "000010.tar"}) {
    write_shard(dir / ("s/" + std::string(name)), {{"k.jpg", "x"}});
  }
  std::ofstream(dir / "s/notes.txt") << "not a shard";
  EXPECT_EQ(expand_shard_spec(dir / "s"),
            (std::vector<std::string>{dir / "s/000000.tar", dir / "s/000001.tar",
                                      dir / "s/000002.tar", dir / "s/000010.tar"}));
  EXPECT_EQ(
      expand_shard_spec(dir / "s/{000000..000002}.tar"),
      (std::vector<std::string>{dir / "s/000000.tar", dir / "s/000001.tar", dir / "s/000002.tar"}));
  EXPECT_EQ(expand_shard_spec(dir / "s/0000{10,00}.tar"),
            (std::vector<std::string>{dir / "s/000010.tar", dir / "s/000000.tar"}));
  EXPECT_EQ(expand_shard_spec(dir / "s/000001.tar"),
            (std::vector<std::string>{dir / "s/000001.tar"}));

  auto what = error_of([&] { expand_shard_spec(dir / "s/{000000..000003}.tar"); });
  EXPECT_NE(what.find("000003.tar does not exist"), std::string::npos) << what;
  EXPECT_THROW(expand_shard_spec(dir / "s/{0..x}.tar"), UsageError);
  EXPECT_THROW(expand_shard_spec(dir / "s/{000000.tar"), UsageError);
  EXPECT_THROW(expand_shard_spec(dir / "s/{5..1}.tar"), UsageError);
  EXPECT_THROW(expand_shard_spec(dir / "missing"), DataError);
  std::filesystem::create_directories(dir / "empty");
  EXPECT_THROW(expand_shard_spec(dir / "empty"), DataError);
}

TEST(Webdataset, SamplesGroupByKeyWithTheirClassMembers) {
  ScratchDir dir;
  write_shard(dir / "d/test/0.tar", {{"s0.jpg", "\xff\xd8\xff-0"},
                                     {"s0.cls", " 1\n"},
                                     {"s1.PNG", "png-1"},
                                     {"s1.json", R"({"label": 0, "wnid": "n01440764"})"},
                                     {"s1.txt", "a caption"},
                                     {"README", "members without an extension are ignored"}});
  write_shard(dir / "d/test/1.tar", {{"dir/s2.cls", "cat"}, {"dir/s2.jpeg", "jpeg-2"}});
  std::ofstream(dir / "d/classnames.txt") << "dog\ncat\n\n";
  std::ofstream(dir / "d/zeroshot_classification_templates.txt") << "a photo of a {c}.\n";

  const auto shards = scan_shards(dir / "d/test");
  EXPECT_EQ(shards.root, dir / "d/test");
  EXPECT_EQ(shards.files, (std::vector<std::string>{"0.tar", "1.tar"}));
  ASSERT_EQ(shards.samples.size(), 3u);
  EXPECT_EQ(shards.samples[0].key, "s0");
  EXPECT_EQ(shards.samples[0].cls, "1");
  EXPECT_EQ(shards.samples[1].key, "s1");
  EXPECT_EQ(shards.samples[2].key, "dir/s2");
  EXPECT_EQ(shards.classnames, (std::vector<std::string>{"dog", "cat"}));
  EXPECT_EQ(shards.templates, (std::vector<std::string>{"a photo of a {c}."}));

  // Image references are relative to the root and read back the image's bytes.
  EXPECT_EQ(read_image_bytes(shards.root + "/" + shards.samples[1].image), "png-1");
  EXPECT_EQ(read_image_bytes(shards.root + "/" + shards.samples[2].image), "jpeg-2");
  EXPECT_EQ(shards.samples[2].image_size, 6);
  EXPECT_EQ(parse_member_ref(shards.samples[2].image)->archive, "1.tar");

  auto c = sample_class(shards.samples[0], shards, "label");
  EXPECT_EQ(*c.index, 1);
  EXPECT_EQ(c.name, "cat");
  c = sample_class(shards.samples[1], shards, "label");
  EXPECT_EQ(*c.index, 0);
  EXPECT_EQ(c.name, "dog");
  c = sample_class(shards.samples[1], shards, "wnid");
  EXPECT_FALSE(c.index);
  EXPECT_EQ(c.name, "n01440764");
  EXPECT_EQ(sample_class(shards.samples[1], shards, "other").name, "");
  EXPECT_EQ(sample_class(shards.samples[2], shards, "label").name, "cat");
}

TEST(Webdataset, BadSamplesAreOneLineErrorsNamingShardAndKey) {
  ScratchDir dir;
  write_shard(dir / "a/0.tar", {{"k1.jpg", "x"}, {"k2.cls", "3"}});
  auto what = error_of([&] { scan_shards(dir / "a/0.tar"); });
  EXPECT_NE(what.find("0.tar: sample k2: no image member"), std::string::npos) << what;

  write_shard(dir / "b/0.tar", {{"k1.jpg", "x"}, {"k1.png", "y"}});
  what = error_of([&] { scan_shards(dir / "b"); });
  EXPECT_NE(what.find("sample k1: two image members"), std::string::npos) << what;

  write_shard(dir / "c/0.tar", {{"k1.webp", "RIFF"}, {"k2.txt", "a caption, no image"}});
  what = error_of([&] { scan_shards(dir / "c"); });
  EXPECT_NE(what.find("sample k2: no image member"), std::string::npos) << what;

  write_shard(dir / "d/0.tar",
              {{"k1.jpg", "x"}, {"k1.cls", "7"}, {"k2.jpg", "y"}, {"k2.json", "{not json"}});
  std::ofstream(dir / "d/classnames.txt") << "dog\ncat\n";
  const auto shards = scan_shards(dir / "d");
  what = error_of([&] { sample_class(shards.samples[0], shards, "label"); });
  EXPECT_NE(what.find("sample k1: class index 7 is outside"), std::string::npos) << what;
  what = error_of([&] { sample_class(shards.samples[1], shards, "label"); });
  EXPECT_NE(what.find("sample k2: .json does not parse"), std::string::npos) << what;
  for (const auto& line : {what}) EXPECT_EQ(line.find('\n'), std::string::npos) << line;
}

}  // namespace
}  // namespace mll::archive
