// Webdataset shards through the mll binary: a probe set from shards labels to the same
// embeddings as the same images in a folder tree; a task whose images are in shards runs select
// and reuse with the folder task's results; a corrupt shard is a one-line error that damages
// nothing; tools/folder_to_shards.py writes shards mll reads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "label_world.hpp"
#include "mll/archive/image_ref.hpp"
#include "mll/archive/tar.hpp"
#include "mll/core/fs.hpp"
#include "mll/store/store.hpp"
#include "run_command.hpp"

namespace mll::test {
namespace {

namespace stdfs = std::filesystem;
using nlohmann::json;

const char* kLabelFlags =
    " --batch 8 --unit 16 --device cpu --threads 1 --decode-threads 2 --no-progress";

// The images of a class-folder tree, class by class (sorted), files sorted: (member name, path).
std::vector<std::pair<std::string, std::string>> tree_images(const std::string& tree) {
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<std::string> classes;
  for (const auto& e : stdfs::directory_iterator(tree)) {
    if (e.is_directory()) classes.push_back(e.path().filename().string());
  }
  std::sort(classes.begin(), classes.end());
  for (const auto& c : classes) {
    std::vector<std::string> files;
    for (const auto& e : stdfs::directory_iterator(tree + "/" + c)) {
      files.push_back(e.path().filename().string());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) out.emplace_back(c + "/" + f, tree + "/" + c + "/" + f);
  }
  return out;
}

// Shards of `per_shard` samples (000000.tar, ...) holding the tree's images under their
// relative names; with `classes`, each sample also gets a .cls: its class's index in `classes`.
int write_shards(const std::string& tree, const std::string& out, int per_shard,
                 const std::vector<std::string>& classes = {}) {
  stdfs::create_directories(out);
  const auto images = tree_images(tree);
  int shards = 0;
  for (std::size_t first = 0; first < images.size(); first += per_shard, ++shards) {
    char name[32];
    std::snprintf(name, sizeof name, "/%06d.tar", shards);
    archive::TarWriter writer(out + name);
    for (std::size_t i = first; i < std::min(images.size(), first + per_shard); ++i) {
      const auto& [member, path] = images[i];
      writer.add(member, fs::read_file(path));
      if (!classes.empty()) {
        const std::string cls = member.substr(0, member.find('/'));
        const auto index = std::find(classes.begin(), classes.end(), cls) - classes.begin();
        writer.add(member.substr(0, member.rfind('.')) + ".cls", std::to_string(index) + "\n");
      }
    }
    writer.finish();
  }
  return shards;
}

// The member name of a probe row (shard stores) or its path (tree stores): the image's name in
// both layouts.
std::string image_name(const std::string& stored) {
  const auto member = archive::parse_member_ref(stored);
  return member ? member->member : stored;
}

class ShardsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string d = dir_.path();
    std::ofstream seeds(d + "/seeds.txt");
    for (const auto& wnid : world_seeds()) seeds << wnid << "\n";
    seeds.close();
    auto r = run_mll("graph build --seeds " + d + "/seeds.txt -o " + d + "/graph.h5", dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    write_world_images(d + "/images", world_seeds(), 7, 40);
    ids_ = write_world_models(d + "/models", zoo(), 2);
    // 42 images in 5 shards of 10: labeling units of 16 rows start and end inside shards.
    ASSERT_EQ(write_shards(d + "/images", d + "/shards", 10), 5);
  }
  std::string zoo() const { return dir_ / "zoo.json"; }
  CommandResult probe_build(const std::string& source, const std::string& store) {
    return run_mll("probe build --graph " + (dir_ / "graph.h5") + " " + source +
                       " --per-node 50 --store " + store,
                   dir_);
  }
  CommandResult label(const std::string& store) {
    return run_mll("label --store " + store + " --zoo " + zoo() + kLabelFlags, dir_);
  }

  ScratchDir dir_;
  std::vector<std::string> ids_;
};

TEST_F(ShardsTest, AProbeSetFromShardsLabelsToTheFolderTreesEmbeddings) {
  const std::string tree = dir_ / "tree.h5", shards = dir_ / "shards.h5";
  auto r = probe_build("--images " + (dir_ / "images"), tree);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = probe_build("--shards '" + (dir_ / "shards/{000000..000004}.tar") + "'", shards);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(label(tree).exit_code, 0);
  r = label(shards);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(run_mll("store verify " + shards, dir_).exit_code, 0);

  const auto a = store::Store::open(tree, store::Store::Mode::kRead);
  const auto b = store::Store::open(shards, store::Store::Mode::kRead);
  ASSERT_EQ(a.probe().image_count(), 42u);
  ASSERT_EQ(b.probe().image_count(), 42u);
  // Rows are in shard order, then archive order: every shard is read front to back.
  for (std::size_t i = 0; i < b.probe().image_count(); ++i) {
    const auto member = archive::parse_member_ref(b.probe().image_paths[i]);
    ASSERT_TRUE(member) << b.probe().image_paths[i];
    if (i > 0) {
      const auto before = archive::parse_member_ref(b.probe().image_paths[i - 1]);
      EXPECT_TRUE(member->archive > before->archive ||
                  (member->archive == before->archive && member->offset > before->offset));
    }
  }
  std::map<std::string, std::int64_t> tree_row;
  for (std::size_t i = 0; i < a.probe().image_count(); ++i) {
    tree_row[image_name(a.probe().image_paths[i])] = static_cast<std::int64_t>(i);
  }
  for (const auto& id : ids_) {
    const auto ea = a.read_image_embeddings(id, 0, 42), eb = b.read_image_embeddings(id, 0, 42);
    for (std::size_t i = 0; i < b.probe().image_count(); ++i) {
      const std::string name = image_name(b.probe().image_paths[i]);
      ASSERT_TRUE(tree_row.count(name)) << name;
      const auto j = tree_row[name];
      EXPECT_EQ(std::memcmp(eb.row(static_cast<std::int64_t>(i)), ea.row(j),
                            sizeof(float) * static_cast<std::size_t>(ea.cols)),
                0)
          << id << " " << name;
    }
    EXPECT_EQ(a.read_text_embeddings(id).values, b.read_text_embeddings(id).values) << id;
    EXPECT_EQ(a.read_labels(id).node_top1, b.read_labels(id).node_top1) << id;
  }
}

TEST_F(ShardsTest, ATaskWithImagesInShardsRunsSelectAndReuseLikeTheFolderTask) {
  const std::string store = dir_ / "store.h5";
  ASSERT_EQ(probe_build("--images " + (dir_ / "images"), store).exit_code, 0);
  ASSERT_EQ(label(store).exit_code, 0);
  // Target images: other renderings of four seeds, in class-named folders and in shards whose
  // .cls indexes classnames.txt (CLIP_benchmark's layout), in another order than the task's.
  const std::vector<std::pair<std::string, std::string>> classes = {
      {"n02085620", "Chihuahua"},
      {"n02099601", "golden retriever"},
      {"n02110958", "pug"},
      {"n01443537", "goldfish"}};
  write_world_images(dir_ / "raw", world_seeds(), 3, 36, 3);
  std::vector<std::string> names;
  for (const auto& [wnid, name] : classes) {
    stdfs::create_directories(dir_ / ("target/" + name));
    for (const auto& e : stdfs::directory_iterator(dir_ / ("raw/" + wnid))) {
      stdfs::copy_file(e.path(), dir_ / ("target/" + name + "/" + e.path().filename().string()));
    }
    names.push_back(name);
  }
  std::vector<std::string> listed = names;
  std::sort(listed.begin(), listed.end());
  std::reverse(listed.begin(), listed.end());
  write_shards(dir_ / "target", dir_ / "wds/test", 5, listed);
  std::ofstream classnames(dir_ / "wds/classnames.txt");
  for (const auto& n : listed) classnames << n << "\n";
  classnames.close();
  const std::string common =
      R"("name": "pets", "classes": ["Chihuahua", "golden retriever", "pug", "goldfish"],
         "domain": "photos of pets", )";
  std::ofstream(dir_ / "folder.json") << "{" << common << R"("images": {"dir": "target"}})";
  std::ofstream(dir_ / "shards.json") << "{" << common << R"("images": {"shards": "wds/test"}})";

  auto r = run_mll("select --store " + store + " --task " + (dir_ / "shards.json") + " --zoo " +
                       zoo() + " --out " + (dir_ / "selection.json"),
                   dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, json> reports;
  for (const std::string task : {"folder", "shards"}) {
    r = run_mll("reuse --store " + store + " --task " + (dir_ / (task + ".json")) +
                    " --selection " + (dir_ / "selection.json") + " --zoo " + zoo() + " --out " +
                    (dir_ / ("out-" + task)) + " --device cpu --threads 1 --decode-threads 2",
                dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    reports[task] = json::parse(slurp(dir_ / ("out-" + task + "/report.json")));
  }
  EXPECT_EQ(reports["shards"]["images"], 12);
  ASSERT_EQ(reports["folder"]["methods"].size(), reports["shards"]["methods"].size());
  for (std::size_t m = 0; m < reports["folder"]["methods"].size(); ++m) {
    const auto& f = reports["folder"]["methods"][m];
    const auto& s = reports["shards"]["methods"][m];
    EXPECT_EQ(f["name"], s["name"]);
    EXPECT_EQ(f["top1"], s["top1"]) << f["name"];
    EXPECT_EQ(f["confusion"], s["confusion"]) << f["name"];
  }

  // CLIP_benchmark's templates beside the shards ({c} for the class) are the default prompts.
  std::ofstream(dir_ / "wds/zeroshot_classification_templates.txt")
      << "a photo of a {c}.\na blurry photo of the {c}.\n";
  r = run_mll("reuse --store " + store + " --task " + (dir_ / "shards.json") + " --selection " +
                  (dir_ / "selection.json") + " --zoo " + zoo() + " --out " + (dir_ / "out-t") +
                  " --device cpu --threads 1 --decode-threads 2",
              dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("prompt templates: 2 from " + (dir_ / "wds") +
                       "/zeroshot_classification_templates.txt"),
            std::string::npos)
      << r.err;
}

TEST_F(ShardsTest, ACorruptShardIsAOneLineErrorAndLeavesNoDamage) {
  const std::string store = dir_ / "store.h5";
  const std::string spec = dir_ / "shards";
  ASSERT_EQ(probe_build("--shards " + spec, store).exit_code, 0);
  const std::string index_before = slurp(store);

  // A damaged header inside shard 2: refused before anything is written, the shard named.
  const std::string shard = dir_ / "shards/000002.tar";
  const std::string good = fs::read_file(shard);
  const auto members = archive::list_members(shard);
  std::string bad = good;
  for (int i = 0; i < 64; ++i) bad[static_cast<std::size_t>(members[3].offset) + i] = 'Z';
  std::ofstream(shard, std::ios::binary | std::ios::trunc) << bad;
  for (const std::string& target : {store + " --force", dir_ / "new.h5"}) {
    const auto r = probe_build("--shards " + spec, target);
    EXPECT_EQ(r.exit_code, 65) << r.err;
    EXPECT_NE(r.err.find("mll: error: " + shard + ": corrupt tar archive after member"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  EXPECT_EQ(slurp(store), index_before);
  EXPECT_FALSE(stdfs::exists(dir_ / "new.h5"));

  // Changed image bytes after the probe build: that labeling unit fails naming the member, the
  // others are stored, the store stays valid, and restoring the shard lets the rerun finish.
  std::string changed = good;
  changed[static_cast<std::size_t>(members[0].offset + 512 + members[0].size / 2)] ^= 0x55;
  std::ofstream(shard, std::ios::binary | std::ios::trunc) << changed;
  auto r = label(store);
  EXPECT_EQ(r.exit_code, 65) << r.err;
  EXPECT_NE(r.err.find("000002.tar:" + std::string(12, '0') + ":" + members[0].name),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("changed since"), std::string::npos) << r.err;
  EXPECT_EQ(run_mll("store verify " + store, dir_).exit_code, 0);
  std::ofstream(shard, std::ios::binary | std::ios::trunc) << good;
  r = label(store);
  EXPECT_EQ(r.exit_code, 0) << r.err;

  // Samples without an image or without a class.
  stdfs::create_directories(dir_ / "orphan");
  stdfs::create_directories(dir_ / "nameless");
  archive::TarWriter orphan(dir_ / "orphan/0.tar");
  orphan.add("n01440764/a.png", fs::read_file(tree_images(dir_ / "images")[0].second));
  orphan.add("n01440764/b.cls", "n01440764");
  orphan.finish();
  r = probe_build("--shards " + (dir_ / "orphan"), dir_ / "o.h5");
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(r.err.find("0.tar: sample n01440764/b: no image member"), std::string::npos) << r.err;
  archive::TarWriter nameless(dir_ / "nameless/0.tar");
  nameless.add("photos/a.png", fs::read_file(tree_images(dir_ / "images")[0].second));
  nameless.finish();
  r = probe_build("--shards " + (dir_ / "nameless"), dir_ / "o.h5");
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(r.err.find("sample photos/a: no class"), std::string::npos) << r.err;
  EXPECT_FALSE(stdfs::exists(dir_ / "o.h5"));
}

TEST_F(ShardsTest, FolderToShardsWritesShardsThatGiveTheTreesProbeImages) {
  if (std::system("/usr/bin/python3 -c 'import tarfile' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3 is not installed";
  }
  auto r = run_command("/usr/bin/python3 " + source_dir() + "/tools/folder_to_shards.py " +
                           (dir_ / "images") + " " + (dir_ / "py") + " --per-shard 16",
                       dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("42 images of 6 classes in 3 shards"), std::string::npos) << r.out;
  const std::string store = dir_ / "py.h5";
  r = probe_build("--shards " + (dir_ / "py") + " --verify --strict", store);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto s = store::Store::open(store, store::Store::Mode::kRead);
  ASSERT_EQ(s.probe().image_count(), 42u);
  const auto images = tree_images(dir_ / "images");
  for (std::size_t i = 0; i < images.size(); ++i) {
    // The same order as the tree, each member holding the file's bytes.
    EXPECT_EQ(image_name(s.probe().image_paths[i]), images[i].first);
    EXPECT_EQ(archive::read_image_bytes(s.probe().path_of(i)), fs::read_file(images[i].second));
  }
  r = run_command("/usr/bin/python3 " + source_dir() + "/tools/folder_to_shards.py " +
                      (dir_ / "missing") + " " + (dir_ / "py2"),
                  dir_);
  EXPECT_EQ(r.exit_code, 65);
}

}  // namespace
}  // namespace mll::test
