#include "mll/h5/h5.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "mll/core/error.hpp"
#include "test_paths.hpp"

namespace mll::h5 {
namespace {

TEST(H5, NumbersRoundTripWithShape) {
  test::ScratchDir dir;
  const std::string path = dir / "t.h5";
  {
    File file = File::create(path);
    Group root = file.root();
    root.write<float>("matrix", {1, 2, 3, 4, 5, 6}, {2, 3});
    root.write<std::int64_t>("ids", {-1, 0, 1LL << 40});
    root.write<std::uint8_t>("empty", {});
  }
  File file = File::open(path, Access::kReadOnly);
  Dims dims;
  EXPECT_EQ(file.root().read<float>("matrix", &dims), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(dims, (Dims{2, 3}));
  EXPECT_EQ(file.root().read<std::int64_t>("ids"), (std::vector<std::int64_t>{-1, 0, 1LL << 40}));
  // HDF5 converts on read: float data read as double.
  EXPECT_EQ(file.root().read<double>("matrix")[5], 6.0);
  EXPECT_TRUE(file.root().read<std::uint8_t>("empty").empty());
}

TEST(H5, StringsAndAttributes) {
  test::ScratchDir dir;
  const std::string path = dir / "t.h5";
  const std::vector<std::string> words{"dog", "", "caf\xc3\xa9", std::string(1000, 'a')};
  {
    File file = File::create(path);
    Group g = file.root().create_group("graph");
    g.write_strings("words", words);
    g.write_strings("none", {});
    g.set_attr("hash", "abc");
    g.set_attr("count", std::int64_t{42});
    g.set_attr("scale", 100.0);
    g.set_attr("count", std::int64_t{43});  // replacing an attribute is allowed
  }
  File file = File::open(path, Access::kReadOnly);
  Group g = file.root().open_group("graph");
  EXPECT_EQ(g.read_strings("words"), words);
  EXPECT_TRUE(g.read_strings("none").empty());
  EXPECT_EQ(g.attr_string("hash"), "abc");
  EXPECT_EQ(g.attr_int("count"), 43);
  EXPECT_DOUBLE_EQ(g.attr_double("scale"), 100.0);
  EXPECT_THROW(g.attr_string("missing"), DataError);
  EXPECT_THROW(g.attr_int("hash"), DataError);
  EXPECT_THROW(g.read_strings("missing"), DataError);
  EXPECT_THROW(g.read<float>("words"), DataError);
}

TEST(H5, GroupsListAndRemove) {
  test::ScratchDir dir;
  File file = File::create(dir / "t.h5");
  Group root = file.root();
  root.create_group("b");
  root.create_group("a");
  root.require_group("a");
  EXPECT_EQ(root.list(), (std::vector<std::string>{"a", "b"}));
  EXPECT_THROW(root.create_group("a"), IoError);
  root.remove("a");
  EXPECT_FALSE(root.has("a"));
  EXPECT_THROW(root.remove("a"), DataError);
  EXPECT_THROW(root.open_group("a"), DataError);
}

TEST(H5, ExtendibleDatasetGrowsByRows) {
  test::ScratchDir dir;
  const std::string path = dir / "t.h5";
  {
    File file = File::create(path);
    Dataset d = file.root().create_extendible<std::uint16_t>("rows", {3}, 4);
    const std::vector<std::uint16_t> first{1, 2, 3, 4, 5, 6};
    d.extend({2, 3});
    d.write_block<std::uint16_t>({0, 0}, {2, 3}, first.data());
    const std::vector<std::uint16_t> second{7, 8, 9};
    d.extend({3, 3});
    d.write_block<std::uint16_t>({2, 0}, {1, 3}, second.data());
  }
  File file = File::open(path, Access::kReadOnly);
  Dataset d = file.root().open_dataset("rows");
  EXPECT_EQ(d.dims(), (Dims{3, 3}));
  EXPECT_EQ(d.read_block<std::uint16_t>({1, 1}, {2, 2}), (std::vector<std::uint16_t>{5, 6, 8, 9}));
  EXPECT_EQ(d.read_all<std::uint16_t>().back(), 9);
}

TEST(H5, OpeningBadFilesFailsWithTheRightError) {
  test::ScratchDir dir;
  std::ofstream(dir / "text.h5") << "this is not HDF5";
  std::ofstream(dir / "empty.h5");
  EXPECT_THROW(File::open(dir / "text.h5", Access::kReadOnly), DataError);
  EXPECT_THROW(File::open(dir / "empty.h5", Access::kReadOnly), DataError);
  EXPECT_THROW(File::open(dir / "missing.h5", Access::kReadOnly), IoError);
  EXPECT_FALSE(is_hdf5(dir / "text.h5"));
  File::create(dir / "real.h5");
  EXPECT_TRUE(is_hdf5(dir / "real.h5"));
  EXPECT_THROW(File::create(dir / "real.h5"), IoError);  // exclusive unless truncating
  try {
    File::create(dir / "nodir/x.h5");
    FAIL();
  } catch (const IoError& e) {
    // The message names the file and carries HDF5's own reason.
    EXPECT_NE(std::string(e.what()).find("nodir/x.h5"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("H5Fcreate"), std::string::npos);
  }
}

TEST(H5, ReadableByH5py) {
  if (std::system("/usr/bin/python3 -c 'import h5py' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-h5py is not installed";
  }
  test::ScratchDir dir;
  const std::string path = dir / "t.h5";
  {
    File file = File::create(path);
    Group g = file.root().create_group("g");
    g.write<float>("m", {1.5f, 2.5f}, {1, 2});
    g.write_strings("s", {"dog", "caf\xc3\xa9"});
    g.set_attr("hash", "abc");
  }
  const std::string script =
      "import h5py,sys\n"
      "f=h5py.File(sys.argv[1],'r'); g=f['g']\n"
      "assert g['m'].shape==(1,2) and float(g['m'][0,1])==2.5\n"
      "assert [x.decode() for x in g['s'][:]]==['dog','caf\\u00e9']\n"
      "a=g.attrs['hash']; a=a.decode() if isinstance(a,bytes) else a\n"
      "assert a=='abc'\n";
  std::ofstream(dir / "check.py") << script;
  EXPECT_EQ(std::system(("/usr/bin/python3 " + (dir / "check.py") + " " + path).c_str()), 0);
}

TEST(H5, Float16IsBitExactAndConvertible) {
  test::ScratchDir dir;
  const std::string path = dir / "t.h5";
  // 1.0, -2.0, 65504 (largest), smallest subnormal, +inf, a quiet NaN.
  const std::vector<std::uint16_t> bits{0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x7e01};
  {
    File file = File::create(path);
    Dataset d = file.root().create_float16("h", {2, 3});
    EXPECT_TRUE(d.is_float16());
    d.write_float16_block({0, 0}, {1, 3}, bits.data());
    d.write_float16_block({1, 0}, {1, 3}, bits.data() + 3);
    file.root().write<float>("f", {1.0f});
  }
  File file = File::open(path, Access::kReadOnly);
  Dataset d = file.root().open_dataset("h");
  EXPECT_EQ(d.dims(), (Dims{2, 3}));
  EXPECT_EQ(d.read_float16_block({0, 0}, {2, 3}), bits);
  EXPECT_EQ(d.read_float16_block({1, 1}, {1, 1}), (std::vector<std::uint16_t>{0x7c00}));
  // HDF5 converts the half type like any float type.
  const auto values = d.read_all<float>();
  EXPECT_EQ(values[0], 1.0f);
  EXPECT_EQ(values[1], -2.0f);
  EXPECT_EQ(values[2], 65504.0f);
  EXPECT_EQ(values[3], 5.9604644775390625e-8f);
  Dataset f = file.root().open_dataset("f");
  EXPECT_FALSE(f.is_float16());
  EXPECT_THROW(f.read_float16_block({0}, {1}), DataError);
}

TEST(H5, ExternalLinksResolveRelativeToTheLinkingFile) {
  test::ScratchDir dir;
  std::filesystem::create_directories(dir / "a/sub");
  {
    File target = File::create(dir / "a/sub/target.h5");
    target.root().write<std::int32_t>("x", {7, 8});
    File index = File::create(dir / "a/index.h5");
    Group models = index.root().create_group("models");
    models.create_external_link("m", "sub/target.h5", "/");
    models.create_external_link("gone", "sub/missing.h5", "/");
  }
  // Moved, and opened from an unrelated working directory.
  std::filesystem::rename(dir / "a", dir / "b");
  File index = File::open(dir / "b/index.h5", Access::kReadOnly);
  Group models = index.root().open_group("models");
  EXPECT_TRUE(models.is_external_link("m"));
  EXPECT_FALSE(models.is_external_link("nothing"));
  EXPECT_EQ(models.external_link("m").file, "sub/target.h5");
  EXPECT_EQ(models.external_link("m").path, "/");
  EXPECT_TRUE(models.resolves("m"));
  EXPECT_FALSE(models.resolves("gone"));
  EXPECT_FALSE(models.resolves("nothing"));
  EXPECT_EQ(models.open_group("m").read<std::int32_t>("x"), (std::vector<std::int32_t>{7, 8}));
  EXPECT_THROW(index.root().external_link("models"), DataError);
}

TEST(H5, CopyGroupsAcrossFiles) {
  test::ScratchDir dir;
  {
    File source = File::create(dir / "a.h5");
    Group g = source.root().create_group("graph");
    g.write<double>("v", {1.5, 2.5});
    g.write_strings("s", {"dog"});
    g.set_attr("hash", "abc");
    g.create_group("inner").set_attr("n", std::int64_t{3});
    File destination = File::create(dir / "b.h5");
    source.root().copy("graph", destination.root(), "copied");
    EXPECT_THROW(source.root().copy("missing", destination.root(), "x"), IoError);
  }
  File file = File::open(dir / "b.h5", Access::kReadOnly);
  Group g = file.root().open_group("copied");
  EXPECT_EQ(g.read<double>("v"), (std::vector<double>{1.5, 2.5}));
  EXPECT_EQ(g.read_strings("s"), (std::vector<std::string>{"dog"}));
  EXPECT_EQ(g.attr_string("hash"), "abc");
  EXPECT_EQ(g.open_group("inner").attr_int("n"), 3);
}

TEST(H5, Float16ReadableByH5pyAsNumpyFloat16) {
  if (std::system("/usr/bin/python3 -c 'import h5py' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-h5py is not installed";
  }
  test::ScratchDir dir;
  const std::string path = dir / "t.h5";
  {
    File file = File::create(path);
    const std::vector<std::uint16_t> bits{0x3c00, 0xb800, 0x0001};  // 1, -0.5, 2^-24
    file.root().create_float16("h", {3}).write_float16_block({0}, {3}, bits.data());
  }
  const std::string script =
      "import h5py,sys,numpy\n"
      "d=h5py.File(sys.argv[1],'r')['h']\n"
      "assert d.dtype==numpy.float16, d.dtype\n"
      "assert d[:].view('uint16').tolist()==[0x3c00,0xb800,0x0001]\n";
  std::ofstream(dir / "check.py") << script;
  EXPECT_EQ(std::system(("/usr/bin/python3 " + (dir / "check.py") + " " + path).c_str()), 0);
}

}  // namespace
}  // namespace mll::h5
