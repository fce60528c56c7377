#include "mll/store/store.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>

#include "mll/core/error.hpp"
#include "mll/core/hash.hpp"
#include "mll/h5/h5.hpp"
#include "mll/store/half.hpp"
#include "run_command.hpp"
#include "seal.hpp"  // the store's own seal, to write files a newer writer would
#include "store_fixture.hpp"
#include "test_paths.hpp"

namespace mll::store {
namespace {

namespace stdfs = std::filesystem;
using test::kDim;
using ::testing::HasSubstr;

struct Inputs {
  graph::Graph graph = test::small_graph();
  probe::ProbeSet probe = test::small_probe(graph, 40);
};

const Inputs& inputs() {
  static const Inputs in;
  return in;
}

Store make_store(const std::string& path) {
  return Store::create(path, inputs().graph, inputs().probe, false);
}

std::vector<std::uint16_t> half_bits(const Matrix& m) {
  std::vector<std::uint16_t> bits;
  for (float v : m.values) bits.push_back(float_to_half(v));
  return bits;
}

std::vector<std::uint16_t> expected_bits(const std::string& id, UnitKind kind, std::int64_t begin,
                                         std::int64_t end) {
  std::vector<std::uint16_t> bits;
  for (float v : test::fake_rows(id, {kind, begin, end})) bits.push_back(float_to_half(v));
  return bits;
}

// Every file under `dir` with its size, mtime (ns), inode and SHA-256.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : stdfs::recursive_directory_iterator(dir)) {
    struct stat st {};
    ::lstat(e.path().c_str(), &st);
    std::string value = std::to_string(st.st_ino) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
                        std::to_string(st.st_mtim.tv_nsec);
    if (e.is_regular_file()) value += " " + sha256_file(e.path().string());
    files[e.path().string()] = value;
  }
  return files;
}

TEST(Store, CreateOpenRoundTrip) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  {
    Store s = make_store(path);
    EXPECT_EQ(s.mode(), Store::Mode::kWrite);
  }
  EXPECT_TRUE(stdfs::is_directory(path + ".d"));
  Store s = Store::open(path, Store::Mode::kRead);
  EXPECT_EQ(s.graph().content_hash(), inputs().graph.content_hash());
  EXPECT_EQ(s.probe().content_hash(), inputs().probe.content_hash());
  ASSERT_EQ(s.node_caption().size(), s.graph().size());
  for (std::size_t v = 0; v < s.graph().size(); ++v) {
    EXPECT_EQ(s.captions()[static_cast<std::size_t>(s.node_caption()[v])],
              s.graph().node(v).caption);
  }
  // Captions are distinct, in node order of first appearance.
  EXPECT_EQ(s.node_caption().front(), 0);
  EXPECT_TRUE(s.models().empty());
  EXPECT_TRUE(s.verify().ok());
  // The index is plain HDF5 with the documented root attributes.
  h5::File f = h5::File::open(path, h5::Access::kReadOnly);
  EXPECT_EQ(f.root().attr_string("mll_file_kind"), "label-store");
  EXPECT_EQ(f.root().attr_int("schema_version"), kStoreSchemaVersion);

  EXPECT_THROW(make_store(path), UsageError);
  try {
    make_store(path);
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr(path));
  }
}

TEST(Store, CreateRefusesProbeOfAnotherGraph) {
  test::ScratchDir dir;
  probe::ProbeSet p = inputs().probe;
  p.graph_hash = std::string(64, '0');
  EXPECT_THROW(Store::create(dir / "s.h5", inputs().graph, p, false), DataError);
}

TEST(Store, ForceReplacesAnExistingStore) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  {
    Store s = make_store(path);
    test::label_model(s, "m1");
  }
  Store s = Store::create(path, inputs().graph, inputs().probe, true);
  EXPECT_TRUE(s.models().empty());
  EXPECT_FALSE(stdfs::exists(path + ".d/m1.h5"));
  EXPECT_TRUE(s.verify().ok());
}

TEST(Store, SecondWriterIsRefusedWithTheHolderNamed) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  make_store(path);
  {
    Store writer = Store::open(path, Store::Mode::kWrite);
    // flock locks belong to an open file description: a second open in this process conflicts.
    try {
      Store::open(path, Store::Mode::kWrite);
      ADD_FAILURE() << "second writer was not refused";
    } catch (const LockedError& e) {
      EXPECT_THAT(e.what(), HasSubstr(":" + std::to_string(::getpid()) + " since "));
      EXPECT_THAT(e.what(), HasSubstr("store.h5 is locked by "));
      EXPECT_EQ(e.code(), ExitCode::kUsage);
    }
    // Another process is refused too; readers are not.
    const pid_t child = ::fork();
    if (child == 0) {
      int rc = 1;
      try {
        Store::open(path, Store::Mode::kWrite);
      } catch (const LockedError&) {
        rc = 0;
      } catch (...) {
        rc = 2;
      }
      _exit(rc);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_NO_THROW(Store::open(path, Store::Mode::kRead));
  }
  EXPECT_NO_THROW(Store::open(path, Store::Mode::kWrite));  // released by the destructor
}

TEST(Store, RegisterRules) {
  test::ScratchDir dir;
  Store s = make_store(dir / "store.h5");
  s.register_model(test::fake_record("m1"));
  ASSERT_TRUE(s.find_model("m1"));
  EXPECT_EQ(s.find_model("m1")->status, ModelStatus::kPending);
  EXPECT_FALSE(s.find_model("m1")->registered_utc.empty());
  const Unit unit{UnitKind::kImage, 0, 5};
  s.commit_unit("m1", unit, test::fake_rows("m1", unit).data(), kDim);
  s.register_model(test::fake_record("m1"));  // same file: progress kept
  EXPECT_EQ(s.progress("m1").images_done, 5);
  ModelRecord other = test::fake_record("m1");
  other.model_sha256 = std::string(64, 'f');
  try {
    s.register_model(other);
    ADD_FAILURE() << "different sha accepted";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("model m1 in"));
    EXPECT_THAT(e.what(), HasSubstr("was labeled from a different file"));
    EXPECT_THAT(e.what(), HasSubstr("mll store rm-model m1 first"));
  }
  EXPECT_THROW(s.register_model(test::fake_record("bad/id")), UsageError);
  EXPECT_THROW(s.register_model(test::fake_record("..")), UsageError);
  EXPECT_THROW(s.register_model(test::fake_record("")), UsageError);
  EXPECT_NO_THROW(s.register_model(test::fake_record("ViT-B-32.openai_v2")));
  EXPECT_NO_THROW(s.register_model(test::fake_record("ViT-B-32:laion2b_s34b_b79k")));
  for (const char* bad : {"a,b", "a b", ".hidden", "tab\there"}) {
    EXPECT_THROW(s.register_model(test::fake_record(bad)), UsageError) << bad;
  }
  EXPECT_THROW(s.missing_units("nope", 4, 4), UsageError);
}

TEST(Store, LabelingFlowAndBitExactFloat16) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  Store s = make_store(path);
  s.register_model(test::fake_record("m1"));
  const auto c = static_cast<std::int64_t>(s.captions().size());
  const auto p = static_cast<std::int64_t>(s.probe().image_count());
  auto units = s.missing_units("m1", 16, 8);
  ASSERT_FALSE(units.empty());
  EXPECT_EQ(units.front(), (Unit{UnitKind::kText, 0, std::min<std::int64_t>(8, c)}));
  EXPECT_EQ(units.back(), (Unit{UnitKind::kImage, 32, p}));
  // Commit a few units out of order; the rest is what missing_units reports.
  const Unit image_mid{UnitKind::kImage, 16, 32};
  s.commit_unit("m1", image_mid, test::fake_rows("m1", image_mid).data(), kDim);
  const auto rest = s.missing_units("m1", 10, 100);
  EXPECT_EQ(rest, (std::vector<Unit>{{UnitKind::kText, 0, c},
                                     {UnitKind::kImage, 0, 10},
                                     {UnitKind::kImage, 10, 16},
                                     {UnitKind::kImage, 32, p}}));
  EXPECT_THROW(s.commit_unit("m1", {UnitKind::kImage, 20, 40},
                             test::fake_rows("m1", {UnitKind::kImage, 20, 40}).data(), kDim),
               UsageError);  // overlaps
  EXPECT_THROW(s.commit_unit("m1", {UnitKind::kImage, 30, p + 1},
                             test::fake_rows("m1", {UnitKind::kImage, 30, p + 1}).data(), kDim),
               UsageError);  // out of range
  std::vector<float> wide(16 * 4, 0.5f);
  EXPECT_THROW(s.commit_unit("m1", {UnitKind::kImage, 0, 4}, wide.data(), 16), DataError);
  std::vector<float> unnormalised(kDim * 2, 1.0f);
  EXPECT_THROW(s.commit_unit("m1", {UnitKind::kImage, 0, 2}, unnormalised.data(), kDim), DataError);
  auto nan_rows = test::fake_rows("m1", {UnitKind::kImage, 0, 2});
  nan_rows[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(s.commit_unit("m1", {UnitKind::kImage, 0, 2}, nan_rows.data(), kDim), DataError);
  EXPECT_THROW(s.finish_model("m1", test::fake_labels(s.graph().size()), {}), InternalError);
  // Unfinished rows are readable from the parts.
  EXPECT_EQ(half_bits(s.read_image_embeddings("m1", 20, 30)),
            expected_bits("m1", UnitKind::kImage, 20, 30));
  EXPECT_THROW(s.read_image_embeddings("m1", 0, 20), DataError);

  for (const auto& unit : rest) s.commit_unit("m1", unit, test::fake_rows("m1", unit).data(), kDim);
  EXPECT_TRUE(s.missing_units("m1", 10, 10).empty());
  EXPECT_TRUE(s.verify().ok());
  FinishInfo info;
  info.logit_scale = 42.5;
  info.config_json = "{\"batch\": 4}";
  info.started_utc = "2024-01-01T00:00:00Z";
  s.finish_model("m1", test::fake_labels(s.graph().size()), info);
  EXPECT_FALSE(stdfs::exists(path + ".d/m1.parts"));
  EXPECT_EQ(s.find_model("m1")->status, ModelStatus::kDone);
  const auto report = s.verify();
  EXPECT_TRUE(report.ok()) << ::testing::PrintToString(report.violations);

  Store r = Store::open(path, Store::Mode::kRead);
  const Matrix text = r.read_text_embeddings("m1");
  EXPECT_EQ(text.rows, c);
  EXPECT_EQ(text.cols, kDim);
  EXPECT_EQ(half_bits(text), expected_bits("m1", UnitKind::kText, 0, c));
  EXPECT_EQ(half_bits(r.read_image_embeddings("m1", 0, p)),
            expected_bits("m1", UnitKind::kImage, 0, p));
  // Stored bits are exactly the rounded floats: reading the dataset raw gives the same.
  h5::File f = h5::File::open(path + ".d/m1.h5", h5::Access::kReadOnly);
  const auto raw = f.root()
                       .open_dataset("image_embeddings")
                       .read_float16_block({0, 0}, {static_cast<std::uint64_t>(p), kDim});
  EXPECT_EQ(raw, expected_bits("m1", UnitKind::kImage, 0, p));
  const ModelInfo mi = r.model_info("m1");
  EXPECT_EQ(mi.dim, kDim);
  EXPECT_DOUBLE_EQ(mi.logit_scale, 42.5);
  EXPECT_EQ(mi.model_sha256, test::fake_record("m1").model_sha256);
  EXPECT_EQ(mi.started_utc, "2024-01-01T00:00:00Z");
  EXPECT_EQ(mi.graph_hash, inputs().graph.content_hash());
  EXPECT_EQ(mi.probe_hash, inputs().probe.content_hash());
  EXPECT_EQ(mi.config_json, "{\"batch\": 4}");
  const ModelLabels labels = r.read_labels("m1");
  EXPECT_EQ(labels.node_top1, test::fake_labels(s.graph().size()).node_top1);
  EXPECT_EQ(labels.node_confusion, test::fake_labels(s.graph().size()).node_confusion);
}

TEST(Store, H5pyReadsEmbeddingsThroughTheIndexLink) {
  if (std::system("/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 has no h5py";
  }
  test::ScratchDir dir;
  stdfs::create_directories(dir / "a");
  {
    Store s = make_store(dir / "a/store.h5");
    test::label_model(s, "m1");
  }
  // Moved as a whole, and read from another working directory: the link is relative.
  stdfs::rename(dir / "a", dir / "b");
  const std::string script = dir / "read.py";
  std::ofstream(script) << "import sys, h5py\n"
                           "f = h5py.File(sys.argv[1], 'r')\n"
                           "e = f['models/m1/image_embeddings']\n"
                           "assert str(e.dtype) == 'float16', e.dtype\n"
                           "print(' '.join(str(int(x)) for x in e[:].view('uint16').ravel()))\n";
  const auto result =
      test::run_command("cd / && /usr/bin/python3 " + script + " " + (dir / "b/store.h5"), dir);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::string expected;
  for (auto b : expected_bits("m1", UnitKind::kImage, 0, 40)) {
    expected += (expected.empty() ? "" : " ") + std::to_string(b);
  }
  EXPECT_EQ(result.out, expected + "\n");
  Store s = Store::open(dir / "b/store.h5", Store::Mode::kRead);
  EXPECT_TRUE(s.verify().ok()) << ::testing::PrintToString(s.verify().violations);
}

TEST(Store, AddingAModelLeavesOtherModelsUntouched) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  {
    Store s = make_store(path);
    test::label_model(s, "m1");
  }
  const auto before = snapshot(path + ".d");
  {
    Store s = Store::open(path, Store::Mode::kWrite);
    test::label_model(s, "m2", 3, 4);
    s.register_model(test::fake_record("m3"));
    s.fail_model("m3", "NaN in outputs");
  }
  auto after = snapshot(path + ".d");
  for (const auto& [file, value] : before) {
    if (file == path + ".d") continue;  // the directory's own mtime changes with new entries
    EXPECT_EQ(after[file], value) << file;
  }
  Store s = Store::open(path, Store::Mode::kRead);
  EXPECT_EQ(s.find_model("m3")->status, ModelStatus::kFailed);
  EXPECT_EQ(s.find_model("m3")->message, "NaN in outputs");
  EXPECT_TRUE(s.verify().ok()) << ::testing::PrintToString(s.verify().violations);
}

TEST(Store, FailThenRetry) {
  test::ScratchDir dir;
  Store s = make_store(dir / "store.h5");
  s.register_model(test::fake_record("m1"));
  const Unit unit{UnitKind::kImage, 0, 5};
  s.commit_unit("m1", unit, test::fake_rows("m1", unit).data(), kDim);
  s.fail_model("m1", "out of memory");
  EXPECT_EQ(s.progress("m1").images_done, 5);  // parts kept for the retry
  EXPECT_TRUE(s.verify().ok());
  s.register_model(test::fake_record("m1"));
  EXPECT_EQ(s.find_model("m1")->status, ModelStatus::kPending);
  EXPECT_TRUE(s.find_model("m1")->message.empty());
  test::label_model(s, "m1");
  EXPECT_THROW(s.fail_model("m1", "x"), UsageError);
}

TEST(Store, RemoveModel) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  Store s = make_store(path);
  test::label_model(s, "m1");
  test::label_model(s, "m2");
  s.register_model(test::fake_record("m3"));
  const Unit unit{UnitKind::kText, 0, 2};
  s.commit_unit("m3", unit, test::fake_rows("m3", unit).data(), kDim);
  s.remove_model("m1");
  s.remove_model("m3");
  EXPECT_FALSE(stdfs::exists(path + ".d/m1.h5"));
  EXPECT_FALSE(stdfs::exists(path + ".d/m3.parts"));
  EXPECT_THROW(s.remove_model("m1"), UsageError);
  EXPECT_EQ(s.models().size(), 1u);
  EXPECT_TRUE(s.verify().ok()) << ::testing::PrintToString(s.verify().violations);
  Store r = Store::open(path, Store::Mode::kRead);
  EXPECT_FALSE(r.find_model("m1"));
  EXPECT_TRUE(r.find_model("m2"));
  h5::File f = h5::File::open(path, h5::Access::kReadOnly);
  EXPECT_FALSE(f.root().open_group("models").has("m1"));
  EXPECT_TRUE(f.root().open_group("models").resolves("m2"));
}

TEST(Store, GrowEncodesOnlyNewRowsAndKeepsOldOnesByteIdentical) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  Store s = make_store(path);
  test::label_model(s, "m1");
  s.register_model(test::fake_record("m2"));
  const Unit early{UnitKind::kImage, 0, 10};
  s.commit_unit("m2", early, test::fake_rows("m2", early).data(), kDim);
  const auto old_captions = s.captions();
  const auto c1 = static_cast<std::int64_t>(old_captions.size());
  const std::vector<std::uint16_t> old_images = half_bits(s.read_image_embeddings("m1", 0, 40));
  const std::vector<std::uint16_t> old_text = half_bits(s.read_text_embeddings("m1"));

  const graph::Graph g2 = test::small_graph(true);
  const probe::ProbeSet p2 = test::small_probe(g2, 55);
  ASSERT_GT(g2.size(), s.graph().size());
  // Refusals: a probe set that does not extend the old one, a graph that loses nodes.
  probe::ProbeSet reordered = p2;
  std::swap(reordered.image_paths[0], reordered.image_paths[1]);
  EXPECT_THROW(s.grow(g2, reordered), DataError);
  const graph::Graph smaller = graph::build_graph(test::wordnet(), {{2084071, "dog"}}, {});
  EXPECT_THROW(s.grow(smaller, test::small_probe(smaller, 60)), DataError);
  probe::ProbeSet other_seed = p2;
  other_seed.seed = 5;
  EXPECT_THROW(s.grow(g2, other_seed), DataError);

  s.grow(g2, p2);
  const auto c2 = static_cast<std::int64_t>(s.captions().size());
  ASSERT_GT(c2, c1);
  for (std::size_t i = 0; i < old_captions.size(); ++i) EXPECT_EQ(s.captions()[i], old_captions[i]);
  for (std::size_t v = 0; v < g2.size(); ++v) {
    EXPECT_EQ(s.captions()[static_cast<std::size_t>(s.node_caption()[v])], g2.node(v).caption);
  }
  EXPECT_EQ(s.find_model("m1")->status, ModelStatus::kPending);
  EXPECT_EQ(s.missing_units("m1", 100, 100),
            (std::vector<Unit>{{UnitKind::kText, c1, c2}, {UnitKind::kImage, 40, 55}}));
  EXPECT_EQ(s.progress("m2").images_done, 10);  // parts survive growth
  EXPECT_TRUE(s.verify().ok()) << ::testing::PrintToString(s.verify().violations);
  {
    Store r = Store::open(path, Store::Mode::kRead);  // the grown index reopens
    EXPECT_EQ(r.graph().content_hash(), g2.content_hash());
  }

  test::label_model(s, "m1");
  test::label_model(s, "m2");
  EXPECT_EQ(s.find_model("m1")->status, ModelStatus::kDone);
  const auto images = half_bits(s.read_image_embeddings("m1", 0, 55));
  EXPECT_TRUE(std::equal(old_images.begin(), old_images.end(), images.begin()));
  EXPECT_EQ(images, expected_bits("m1", UnitKind::kImage, 0, 55));
  const auto text = half_bits(s.read_text_embeddings("m1"));
  EXPECT_TRUE(std::equal(old_text.begin(), old_text.end(), text.begin()));
  EXPECT_EQ(s.model_info("m1").graph_hash, g2.content_hash());
  EXPECT_EQ(s.read_labels("m1").node_top1.size(), g2.size());
  EXPECT_TRUE(s.verify().ok()) << ::testing::PrintToString(s.verify().violations);
}

// Selection reads only a task's rows: from the finished file and from parts (a grown model whose
// new rows are committed but not yet consolidated), exactly the rows a full read gives.
TEST(Store, ReadRowsGivesExactlyTheAskedRowsFromFilesAndParts) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  Store s = make_store(path);
  test::label_model(s, "m1");
  const graph::Graph g2 = test::small_graph(true);
  s.grow(g2, test::small_probe(g2, 55));
  for (const auto& unit : s.missing_units("m1", 4, 3)) {
    s.commit_unit("m1", unit, test::fake_rows("m1", unit).data(), kDim);
  }
  const Matrix all = s.read_image_embeddings("m1", 0, 55);
  const std::vector<std::int64_t> ids = {0, 3, 4, 39, 40, 47, 54};
  const Matrix some = s.read_image_rows("m1", ids);
  ASSERT_EQ(some.rows, static_cast<std::int64_t>(ids.size()));
  ASSERT_EQ(some.cols, kDim);
  for (std::size_t r = 0; r < ids.size(); ++r) {
    for (std::int64_t t = 0; t < kDim; ++t) {
      EXPECT_EQ(some.row(static_cast<std::int64_t>(r))[t], all.row(ids[r])[t]) << ids[r];
    }
  }
  const Matrix text = s.read_text_embeddings("m1");
  const std::vector<std::int64_t> captions = {1, static_cast<std::int64_t>(text.rows) - 1};
  const Matrix picked = s.read_text_rows("m1", captions);
  for (std::size_t r = 0; r < captions.size(); ++r) {
    for (std::int64_t t = 0; t < kDim; ++t) {
      EXPECT_EQ(picked.row(static_cast<std::int64_t>(r))[t], text.row(captions[r])[t]);
    }
  }
  EXPECT_EQ(s.read_image_rows("m1", {}).rows, 0);
  EXPECT_THROW(s.read_image_rows("m1", {5, 4}), UsageError);
  EXPECT_THROW(s.read_image_rows("m1", {3, 3}), UsageError);
  EXPECT_THROW(s.read_image_rows("m1", {55}), UsageError);
  s.register_model(test::fake_record("m2"));
  const Unit early{UnitKind::kImage, 0, 10};
  s.commit_unit("m2", early, test::fake_rows("m2", early).data(), kDim);
  EXPECT_EQ(s.read_image_rows("m2", {2, 9}).rows, 2);
  EXPECT_THROW(s.read_image_rows("m2", {2, 10}), DataError);  // not labeled yet
}

TEST(Store, SchemaMismatchAndForeignFilesAreRefused) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  make_store(path);
  {
    h5::File f = h5::File::open(path, h5::Access::kReadWrite);
    f.root().set_attr("schema_version", std::int64_t{3});
  }
  // Edited in place, the index no longer matches its seal: refused as corrupt, before parsing.
  EXPECT_THROW(
      {
        try {
          Store::open(path, Store::Mode::kRead);
        } catch (const DataError& e) {
          EXPECT_THAT(e.what(), HasSubstr("store.h5: corrupt (SHA-256"));
          throw;
        }
      },
      DataError);
  write_seal(path);  // as a writer of schema version 3 would have sealed it
  try {
    Store::open(path, Store::Mode::kRead);
    ADD_FAILURE() << "schema 3 accepted";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("schema version 3"));
    EXPECT_THAT(e.what(), HasSubstr("versions 1 to 2"));
  }
  graph::write_graph_file(inputs().graph, dir / "graph.h5", false);
  try {
    Store::open(dir / "graph.h5", Store::Mode::kRead);
    ADD_FAILURE() << "graph file accepted";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("not an mll label store"));
  }
  std::ofstream(dir / "text.h5") << "hello";
  EXPECT_THROW(Store::open(dir / "text.h5", Store::Mode::kRead), DataError);
  EXPECT_THROW(Store::open(dir / "missing.h5", Store::Mode::kRead), DataError);
}

TEST(Store, ReadOnlyOpenNeverModifiesAnything) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  {
    Store s = make_store(path);
    test::label_model(s, "m1");
    s.register_model(test::fake_record("m2"));
    const Unit unit{UnitKind::kImage, 0, 4};
    s.commit_unit("m2", unit, test::fake_rows("m2", unit).data(), kDim);
  }
  // Leftovers a writer open would clean up.
  std::ofstream(path + ".d/m2.parts/image_4_8.h5.tmp.999") << "partial";
  std::ofstream(path + ".tmp.12345") << "partial";
  const auto before = snapshot(dir.path());
  {
    Store s = Store::open(path, Store::Mode::kRead);
    s.read_text_embeddings("m1");
    s.read_image_embeddings("m2", 0, 4);
    s.missing_units("m2", 3, 3);
    s.model_info("m1");
    // The leftovers are reported as notes (harmless, removed by the next writer), not removed.
    const auto report = s.verify();
    EXPECT_TRUE(report.ok()) << ::testing::PrintToString(report.violations);
    EXPECT_EQ(report.notes.size(), 2u) << ::testing::PrintToString(report.notes);
    EXPECT_THROW(s.register_model(test::fake_record("m3")), UsageError);
    EXPECT_THROW(s.remove_model("m1"), UsageError);
    EXPECT_THROW(s.fail_model("m2", "x"), UsageError);
  }
  EXPECT_EQ(snapshot(dir.path()), before);
  Store w = Store::open(path, Store::Mode::kWrite);
  EXPECT_TRUE(w.verify().ok()) << ::testing::PrintToString(w.verify().violations);
}

// The crash windows of finish_model and remove_model, recreated by restoring files a kill would
// have left: the next writer open must finish the job.
TEST(Store, WriterOpenRepairsInterruptedFinishAndRemove) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  {
    Store s = make_store(path);
    s.register_model(test::fake_record("m1"));
    for (const auto& unit : s.missing_units("m1", 9, 9)) {
      s.commit_unit("m1", unit, test::fake_rows("m1", unit).data(), kDim);
    }
  }
  stdfs::copy_file(path, dir / "index.bak");
  stdfs::copy(path + ".d/m1.parts", dir / "parts.bak");
  {
    Store s = Store::open(path, Store::Mode::kWrite);
    s.finish_model("m1", test::fake_labels(s.graph().size()), {});
  }
  // Killed after the model file's rename, before the index rewrite.
  stdfs::copy_file(dir / "index.bak", path, stdfs::copy_options::overwrite_existing);
  stdfs::copy(dir / "parts.bak", path + ".d/m1.parts");
  {
    Store r = Store::open(path, Store::Mode::kRead);
    EXPECT_EQ(r.find_model("m1")->status, ModelStatus::kPending);
    // A valid state after a kill: the complete file is noted, waiting to be adopted.
    const auto report = r.verify();
    EXPECT_TRUE(report.ok()) << ::testing::PrintToString(report.violations);
    EXPECT_FALSE(report.notes.empty());
  }
  {
    Store s = Store::open(path, Store::Mode::kWrite);
    EXPECT_EQ(s.find_model("m1")->status, ModelStatus::kDone);
    EXPECT_FALSE(stdfs::exists(path + ".d/m1.parts"));
    EXPECT_TRUE(s.verify().ok()) << ::testing::PrintToString(s.verify().violations);
    EXPECT_EQ(half_bits(s.read_image_embeddings("m1", 0, 40)),
              expected_bits("m1", UnitKind::kImage, 0, 40));
  }
  // Killed after remove_model's index rewrite, before its files were deleted.
  stdfs::copy_file(path + ".d/m1.h5", dir / "m1.bak");
  {
    Store s = Store::open(path, Store::Mode::kWrite);
    s.remove_model("m1");
  }
  stdfs::copy_file(dir / "m1.bak", path + ".d/m1.h5");
  const auto report = Store::open(path, Store::Mode::kRead).verify();
  EXPECT_TRUE(report.ok()) << ::testing::PrintToString(report.violations);
  EXPECT_FALSE(report.notes.empty());
  Store s = Store::open(path, Store::Mode::kWrite);
  EXPECT_FALSE(stdfs::exists(path + ".d/m1.h5"));
  EXPECT_TRUE(s.verify().ok()) << ::testing::PrintToString(s.verify().violations);
}

TEST(Store, VerifyReportsDamage) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  {
    Store s = make_store(path);
    test::label_model(s, "m1");
    test::label_model(s, "m2");
  }
  std::ofstream(path + ".d/notes.txt") << "stray";
  stdfs::remove(path + ".d/m2.h5");
  Store s = Store::open(path, Store::Mode::kRead);
  const auto report = s.verify();
  EXPECT_THAT(report.violations, ::testing::Contains(HasSubstr("notes.txt: stray file")));
  EXPECT_THAT(report.violations, ::testing::Contains(HasSubstr("m2.h5: missing")));
  EXPECT_THAT(report.violations,
              ::testing::Contains(HasSubstr("/models/m2: link does not resolve")));
}

}  // namespace
}  // namespace mll::store

namespace mll::store {
namespace {

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A backup of the index taken before labeling, put back over a labeled store: the finished
// model files it does not know are adopted (they fit its graph and probe set), never deleted.
TEST(StoreIntegrity, ARestoredOlderIndexAdoptsTheFinishedFilesBesideIt) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  { Store s = make_store(path); }
  stdfs::copy_file(path, dir / "index.bak");
  {
    Store s = Store::open(path, Store::Mode::kWrite);
    for (const char* id : {"m1", "m2", "m3"}) test::label_model(s, id);
  }
  const std::string m2 = file_bytes(path + ".d/m2.h5");
  stdfs::copy_file(dir / "index.bak", path, stdfs::copy_options::overwrite_existing);
  Store s = Store::open(path, Store::Mode::kWrite);
  for (const char* id : {"m1", "m2", "m3"}) {
    ASSERT_TRUE(s.find_model(id)) << id;
    EXPECT_EQ(s.find_model(id)->status, ModelStatus::kDone) << id;
    EXPECT_EQ(s.find_model(id)->model_sha256, test::fake_record(id).model_sha256) << id;
  }
  EXPECT_EQ(file_bytes(path + ".d/m2.h5"), m2);
  EXPECT_TRUE(s.verify().ok()) << ::testing::PrintToString(s.verify().violations);
  EXPECT_EQ(half_bits(s.read_image_embeddings("m3", 0, 40)),
            expected_bits("m3", UnitKind::kImage, 0, 40));
}

// An id outside [A-Za-z0-9._-] (open_clip's MODEL:PRETRAINED) gets an escaped file name: the
// model labels, links, verifies and reads back, and a restored older index adopts its file under
// the right id. A file whose name is not the canonical stem of an id is quarantined, not adopted.
TEST(StoreIntegrity, IdsWithOtherCharactersLiveInEscapedFileNames) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  const std::string id = "ViT-B-32:laion2b_s34b_b79k";
  { Store s = make_store(path); }
  stdfs::copy_file(path, dir / "index.bak");
  {
    Store s = Store::open(path, Store::Mode::kWrite);
    test::label_model(s, id);
  }
  EXPECT_TRUE(stdfs::exists(path + ".d/ViT-B-32%3Alaion2b_s34b_b79k.h5"));
  EXPECT_FALSE(stdfs::exists(path + ".d/" + id + ".h5"));
  {
    const Store r = Store::open(path, Store::Mode::kRead);
    ASSERT_TRUE(r.find_model(id));
    EXPECT_EQ(r.find_model(id)->status, ModelStatus::kDone);
    EXPECT_TRUE(r.verify().ok()) << ::testing::PrintToString(r.verify().violations);
    EXPECT_EQ(half_bits(r.read_image_embeddings(id, 0, 40)),
              expected_bits(id, UnitKind::kImage, 0, 40));
    EXPECT_EQ(r.model_info(id).id, id);
  }
  // The index link resolves in HDF5 itself (h5py and h5dump follow it).
  {
    const h5::File index = h5::File::open(path, h5::Access::kReadOnly);
    EXPECT_EQ(index.root().open_group("models").external_link(id).file,
              "store.h5.d/ViT-B-32%3Alaion2b_s34b_b79k.h5");
  }
  // A lower-case escape is another spelling of the same id: never adopted under either id.
  stdfs::copy_file(path + ".d/ViT-B-32%3Alaion2b_s34b_b79k.h5",
                   path + ".d/ViT-B-32%3alaion2b_s34b_b79k.h5");
  stdfs::copy_file(dir / "index.bak", path, stdfs::copy_options::overwrite_existing);
  Store s = Store::open(path, Store::Mode::kWrite);
  ASSERT_TRUE(s.find_model(id));
  EXPECT_EQ(s.find_model(id)->status, ModelStatus::kDone);
  EXPECT_EQ(s.models().size(), 1u);
  EXPECT_FALSE(stdfs::exists(path + ".d/ViT-B-32%3alaion2b_s34b_b79k.h5"));
  EXPECT_TRUE(stdfs::exists(path + ".quarantine/ViT-B-32%3alaion2b_s34b_b79k.h5"));
  EXPECT_TRUE(s.verify().ok()) << ::testing::PrintToString(s.verify().violations);
}

// The index of another probe set over these model files is refused, naming both probe hashes,
// and nothing is touched; told to quarantine, the writer moves the files aside, never deletes.
TEST(StoreIntegrity, AnIndexOfAnotherProbeSetIsRefusedOrItsFilesQuarantined) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  {
    Store s = make_store(path);
    test::label_model(s, "m1");
  }
  const std::string m1 = file_bytes(path + ".d/m1.h5");
  const auto other_probe = test::small_probe(inputs().graph, 41);
  { Store other = Store::create(dir / "other.h5", inputs().graph, other_probe, false); }
  stdfs::copy_file(dir / "other.h5", path, stdfs::copy_options::overwrite_existing);
  try {
    Store::open(path, Store::Mode::kWrite);
    ADD_FAILURE() << "a foreign index was accepted";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("m1.h5 was labeled for graph"));
    EXPECT_THAT(e.what(), HasSubstr(inputs().probe.content_hash().substr(0, 16)));
    EXPECT_THAT(e.what(), HasSubstr(other_probe.content_hash().substr(0, 16)));
  }
  EXPECT_EQ(file_bytes(path + ".d/m1.h5"), m1);
  Store::OpenOptions quarantine;
  quarantine.foreign_files = Store::ForeignFiles::kQuarantine;
  {
    Store s = Store::open(path, Store::Mode::kWrite, quarantine);
    EXPECT_FALSE(s.find_model("m1"));
    EXPECT_TRUE(s.verify().ok());
  }
  EXPECT_FALSE(stdfs::exists(path + ".d/m1.h5"));
  EXPECT_EQ(file_bytes(path + ".quarantine/m1.h5"), m1);
}

// rm-model leaves a tombstone: files of a removed model are deleted (an interrupted removal),
// files of an id with neither record nor tombstone that do not fit are quarantined, and
// registering the id again clears its tombstone.
TEST(StoreIntegrity, TombstonesSayWhatMayBeDeleted) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  {
    Store s = make_store(path);
    test::label_model(s, "m1");
    s.register_model(test::fake_record("m2"));
    const auto unit = s.missing_units("m2", 7, 5).front();
    s.commit_unit("m2", unit, test::fake_rows("m2", unit).data(), kDim);
  }
  stdfs::copy_file(path + ".d/m1.h5", dir / "m1.bak");
  {
    Store s = Store::open(path, Store::Mode::kWrite);
    s.remove_model("m1");
  }
  stdfs::copy_file(dir / "m1.bak", path + ".d/m1.h5");  // as a kill before the delete leaves it
  stdfs::copy(path + ".d/m2.parts", dir / "m2.parts.bak");
  {
    Store s = Store::open(path, Store::Mode::kWrite);
    s.remove_model("m2");
  }
  // Parts of an id the index never heard of (no record, no tombstone): not ours to delete.
  stdfs::copy(dir / "m2.parts.bak", path + ".d/m9.parts");
  {
    Store s = Store::open(path, Store::Mode::kWrite);
    EXPECT_FALSE(stdfs::exists(path + ".d/m1.h5"));
    EXPECT_FALSE(stdfs::exists(path + ".d/m9.parts"));
    EXPECT_TRUE(stdfs::is_directory(path + ".quarantine/m9.parts"));
    EXPECT_TRUE(s.verify().ok()) << ::testing::PrintToString(s.verify().violations);
    test::label_model(s, "m1");  // registered again
  }
  {
    Store r = Store::open(path, Store::Mode::kRead);
    EXPECT_EQ(r.find_model("m1")->status, ModelStatus::kDone);
  }
  stdfs::copy_file(path + ".d/m1.h5", dir / "m1.again");
  {
    Store s = Store::open(path, Store::Mode::kWrite);
    s.remove_model("m1");  // a new tombstone
  }
  stdfs::copy_file(dir / "m1.again", path + ".d/m1.h5");
  {
    Store s = Store::open(path, Store::Mode::kWrite);
    EXPECT_FALSE(stdfs::exists(path + ".d/m1.h5"));
    EXPECT_FALSE(s.find_model("m1"));
    test::label_model(s, "m4");
  }
  // Another model's file under a removed id is not the removal's leftover: quarantined.
  stdfs::copy_file(path + ".d/m4.h5", path + ".d/m1.h5");
  Store s = Store::open(path, Store::Mode::kWrite);
  EXPECT_FALSE(stdfs::exists(path + ".d/m1.h5"));
  EXPECT_TRUE(stdfs::exists(path + ".quarantine/m1.h5"));
  // A finished model whose file is gone is labeled again (not stuck as done without rows).
  stdfs::remove(path + ".d/m4.h5");
}

TEST(StoreIntegrity, AFinishedModelWithoutItsFileIsLabeledAgain) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  {
    Store s = make_store(path);
    test::label_model(s, "m1");
  }
  stdfs::rename(path + ".d/m1.h5", dir / "m1.h5");  // as a run killed mid-quarantine leaves it
  Store s = Store::open(path, Store::Mode::kWrite);
  EXPECT_EQ(s.find_model("m1")->status, ModelStatus::kPending);
  EXPECT_EQ(s.missing_units("m1", 1000, 1000).size(), 2u);
  test::label_model(s, "m1");
  EXPECT_TRUE(s.verify().ok()) << ::testing::PrintToString(s.verify().violations);
}

}  // namespace
}  // namespace mll::store
