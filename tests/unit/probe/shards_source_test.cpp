// Probe images from webdataset shards: where each sample's wnid comes from, in order (.cls, a
// JSON field, classnames.txt, the key), and the errors when none gives one.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "mll/archive/tar.hpp"
#include "mll/core/error.hpp"
#include "mll/probe/sources.hpp"
#include "test_paths.hpp"

namespace mll::probe {
namespace {

using test::ScratchDir;

void write_shard(const std::string& path,
                 const std::vector<std::pair<std::string, std::string>>& members) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  archive::TarWriter writer(path);
  for (const auto& [name, data] : members) writer.add(name, data);
  writer.finish();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

TEST(ShardSource, WnidsComeFromClsJsonClassnamesOrTheKey) {
  ScratchDir dir;
  write_shard(dir / "s/000000.tar", {{"a.jpg", "1"},
                                     {"a.cls", "n01440764"},  // a wnid
                                     {"b.jpg", "22"},
                                     {"b.cls", "1"},  // line 1 of classnames.txt
                                     {"c.png", "333"},
                                     {"c.json", R"({"wnid": "n02085620"})"}});
  write_shard(dir / "s/000001.tar", {{"n02099601/x.jpg", "4444"},          // the key's folder
                                     {"n02110958_10026.JPEG", "55555"}});  // the key's start
  std::ofstream(dir / "s/classnames.txt") << "n01440764\nn01443537\n";
  const auto source = read_shards(dir / "s");
  EXPECT_EQ(source.root, dir / "s");
  std::map<std::string, std::vector<std::int64_t>> sizes;
  for (const auto& [wnid, cls] : source.by_wnid) {
    for (const auto& f : cls.files) sizes[wnid].push_back(f.size);
  }
  EXPECT_EQ(sizes, (std::map<std::string, std::vector<std::int64_t>>{{"n01440764", {1}},
                                                                     {"n01443537", {2}},
                                                                     {"n02085620", {3}},
                                                                     {"n02099601", {4}},
                                                                     {"n02110958", {5}}}));
  EXPECT_EQ(source.by_wnid.at("n02099601").files[0].path.rfind("000001.tar:", 0), 0u);
  EXPECT_NE(source.by_wnid.at("n01440764").where.find("sample a"), std::string::npos);
  // Another JSON field: c's wnid now comes from nowhere.
  auto what = error_of([&] { read_shards(dir / "s", "class"); });
  EXPECT_NE(what.find("sample c: no class"), std::string::npos) << what;
}

TEST(ShardSource, ClassesThatAreNotWnidsAreRefusedNamingTheSample) {
  ScratchDir dir;
  write_shard(dir / "a/0.tar", {{"k.jpg", "1"}, {"k.cls", "golden retriever"}});
  auto what = error_of([&] { read_shards(dir / "a"); });
  EXPECT_NE(what.find("0.tar: sample k: class 'golden retriever' is not a wnid"), std::string::npos)
      << what;
  write_shard(dir / "b/0.tar", {{"k.jpg", "1"}, {"k.cls", "3"}});
  what = error_of([&] { read_shards(dir / "b"); });
  EXPECT_NE(what.find("class index 3 but no classnames.txt"), std::string::npos) << what;
}

}  // namespace
}  // namespace mll::probe
