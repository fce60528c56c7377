#include "mll/probe/sources.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "mll/core/error.hpp"
#include "probe_fixture.hpp"
#include "test_paths.hpp"

namespace mll::probe {
namespace {

namespace stdfs = std::filesystem;

void write_file(const std::string& path, const std::string& content) {
  stdfs::create_directories(stdfs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

// Runs `body`, expects a DataError whose message contains every needle.
template <typename Body>
void expect_data_error(Body body, const std::vector<std::string>& needles) {
  try {
    body();
    FAIL() << "no error; expected one mentioning " << needles.front();
  } catch (const DataError& e) {
    for (const auto& needle : needles) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
          << "'" << needle << "' not in: " << e.what();
    }
  }
}

TEST(ProbeImageFileName, ExtensionsAnyCase) {
  EXPECT_TRUE(is_image_file_name("a.jpg"));
  EXPECT_TRUE(is_image_file_name("n01440764_10026.JPEG"));
  EXPECT_TRUE(is_image_file_name("a.Png"));
  EXPECT_TRUE(is_image_file_name("x.y.jpeg"));
  EXPECT_FALSE(is_image_file_name("a.txt"));
  EXPECT_FALSE(is_image_file_name("jpg"));
  EXPECT_FALSE(is_image_file_name(".jpg"));
  EXPECT_FALSE(is_image_file_name("a.jpg.bak"));
}

TEST(ProbeImageTree, ScansFilesDirectlyAndNestedSorted) {
  test::ScratchDir dir;
  const std::string root = dir / "train";
  write_file(root + "/n01440764/b.JPEG", "123");
  write_file(root + "/n01440764/a.jpg", "1");
  write_file(root + "/n01440764/sub/c.png", "12");
  write_file(root + "/n01440764/sub/deeper/d.jpeg", "1234");
  write_file(root + "/n01440764/notes.txt", "not an image");
  write_file(root + "/n01440764/._a.jpg", "macOS side file");
  write_file(root + "/n01440764/.cache/e.jpg", "hidden folder");
  write_file(root + "/n02084071/z.JPEG", "12345");
  write_file(root + "/README", "top-level files are ignored");
  stdfs::create_directories(root + "/.git");
  stdfs::create_symlink(root + "/nowhere.jpg", root + "/n01440764/dangling.jpg");

  const auto source = scan_image_tree(root + "/");
  EXPECT_EQ(source.root, stdfs::absolute(root).lexically_normal().string());
  EXPECT_NE(source.description.find("image tree"), std::string::npos);
  ASSERT_EQ(source.by_wnid.size(), 2u);
  const auto& tench = source.by_wnid.at("n01440764");
  const std::vector<ImageFile> expected = {{"n01440764/a.jpg", 1},
                                           {"n01440764/b.JPEG", 3},
                                           {"n01440764/sub/c.png", 2},
                                           {"n01440764/sub/deeper/d.jpeg", 4}};
  EXPECT_EQ(tench.files, expected);
  EXPECT_EQ(tench.where, root + "/n01440764");
  EXPECT_EQ(source.by_wnid.at("n02084071").files.size(), 1u);
  EXPECT_EQ(source.entry_count(), 5u);
}

TEST(ProbeImageTree, FoldersWithoutImagesAreLeftOut) {
  test::ScratchDir dir;
  write_file(dir / "t/n01440764/a.jpg", "1");
  write_file(dir / "t/n02084071/readme.txt", "no images");
  const auto source = scan_image_tree(dir / "t");
  EXPECT_EQ(source.by_wnid.size(), 1u);
  EXPECT_EQ(source.by_wnid.count("n02084071"), 0u);
}

TEST(ProbeImageTree, Errors) {
  test::ScratchDir dir;
  expect_data_error([&] { scan_image_tree(dir / "missing"); }, {"missing", "not found"});
  write_file(dir / "file", "x");
  expect_data_error([&] { scan_image_tree(dir / "file"); }, {"not a directory"});

  stdfs::create_directories(dir / "empty");
  expect_data_error([&] { scan_image_tree(dir / "empty"); }, {"empty", "no wnid folders"});

  stdfs::create_directories(dir / "noimages/n01440764");
  expect_data_error([&] { scan_image_tree(dir / "noimages"); }, {"no image files"});

  write_file(dir / "bad/n01440764/a.jpg", "1");
  write_file(dir / "bad/cats/a.jpg", "1");
  expect_data_error([&] { scan_image_tree(dir / "bad"); }, {"bad/cats", "not a wnid"});

  write_file(dir / "zero/n01440764/a.jpg", "1");
  write_file(dir / "zero/n01440764/empty.jpg", "");
  expect_data_error([&] { scan_image_tree(dir / "zero"); },
                    {"zero/n01440764/empty.jpg", "empty (0 bytes)"});
}

TEST(ProbeManifest, RelativeAndAbsolutePathsCommentsAndSharedFiles) {
  test::ScratchDir dir;
  write_file(dir / "data/img/a.jpg", "12");
  write_file(dir / "data/img/b.png", "123");
  write_file(dir / "elsewhere/c.jpg", "1");
  write_file(dir / "data/list.tsv", "# path\twnid\n\nimg/a.jpg\tn01440764\r\n" +
                                        (dir / "elsewhere/c.jpg") + "\tn01440764\n" +
                                        "./img/b.png\tn02084071\nimg/a.jpg\tn02084071\n");
  const auto source = read_manifest(dir / "data/list.tsv");
  EXPECT_EQ(source.root, stdfs::path(dir / "data").lexically_normal().string());
  ASSERT_EQ(source.by_wnid.size(), 2u);
  const auto& tench = source.by_wnid.at("n01440764");
  const std::vector<ImageFile> tench_files = {{dir / "elsewhere/c.jpg", 1}, {"img/a.jpg", 2}};
  EXPECT_EQ(tench.files, tench_files);
  EXPECT_EQ(tench.where, (dir / "data/list.tsv") + ":3");
  const std::vector<ImageFile> dog_files = {{"img/a.jpg", 2}, {"img/b.png", 3}};
  EXPECT_EQ(source.by_wnid.at("n02084071").files, dog_files);
}

TEST(ProbeManifest, AbsolutePathsOnlyNeedNoRoot) {
  test::ScratchDir dir;
  write_file(dir / "a.jpg", "1");
  write_file(dir / "list.tsv", (dir / "a.jpg") + "\tn01440764\n");
  EXPECT_EQ(read_manifest(dir / "list.tsv").root, "");
}

TEST(ProbeManifest, Errors) {
  test::ScratchDir dir;
  write_file(dir / "a.jpg", "1");
  write_file(dir / "empty.jpg", "");
  const std::string file = dir / "m.tsv";
  auto check = [&](const std::string& content, const std::vector<std::string>& needles) {
    write_file(file, content);
    expect_data_error([&] { read_manifest(file); }, needles);
  };
  expect_data_error([&] { read_manifest(dir / "missing.tsv"); }, {"missing.tsv", "not found"});
  check("a.jpg\tn01440764\na.jpg n02084071\n", {"m.tsv:2:", "expected 'path<TAB>wnid'"});
  check("a.jpg\tn01440764\textra\n", {"m.tsv:1:", "expected 'path<TAB>wnid'"});
  check("\tn01440764\n", {"m.tsv:1:", "empty image path"});
  check("a.jpg\tdog\n", {"m.tsv:1:", "malformed wnid 'dog'"});
  check("# c\na.jpg\tn01440764\nb.jpg\tn01440764\n", {"m.tsv:3:", "b.jpg", "not found"});
  check("empty.jpg\tn01440764\n", {"m.tsv:1:", "empty.jpg", "empty (0 bytes)"});
  check("a.jpg\tn01440764\n./a.jpg\tn01440764\n", {"m.tsv:2:", "listed twice", "line 1"});
  check("# nothing\n\n", {"m.tsv", "lists no images"});
}

}  // namespace
}  // namespace mll::probe
