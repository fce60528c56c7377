// Fault injection: a writer process is killed with SIGKILL at random moments while it commits
// units and finishes models; after every kill a writer open repairs the store, verify() must find
// nothing wrong, and the final store must hold exactly what an uninterrupted run writes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>

#include "mll/core/error.hpp"
#include "mll/store/store.hpp"
#include "store_fixture.hpp"
#include "test_paths.hpp"

namespace mll::store {
namespace {

const std::vector<std::string> kModels{"m0", "m1", "m2", "m3"};

// The labeling loop of a writer: resumes whatever is unfinished. Unit sizes differ per model so
// that resumption crosses unit boundaries of several shapes.
void run_writer(const std::string& path) {
  Store s = Store::open(path, Store::Mode::kWrite);
  for (std::size_t k = 0; k < kModels.size(); ++k) {
    const std::string& id = kModels[k];
    const auto record = s.find_model(id);
    if (record && record->status == ModelStatus::kDone) continue;
    s.register_model(test::fake_record(id));
    const auto size = static_cast<std::int64_t>(2 + k);
    for (const auto& unit : s.missing_units(id, size, size + 1)) {
      s.commit_unit(id, unit, test::fake_rows(id, unit).data(), test::kDim);
    }
    FinishInfo info;
    info.config_json = "{\"model\": \"" + id + "\"}";
    info.logit_scale = 50.0 + static_cast<double>(k);
    s.finish_model(id, test::fake_labels(s.graph().size()), info);
  }
}

// Runs the writer in a child process; returns its wait status.
pid_t spawn_writer(const std::string& path) {
  const pid_t child = ::fork();
  if (child == 0) {
    int rc = 0;
    try {
      run_writer(path);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "writer failed: %s\n", e.what());
      rc = 3;
    }
    _exit(rc);
  }
  return child;
}

TEST(StoreFault, KillNineAtRandomMomentsThenResumeEqualsUninterruptedRun) {
  test::ScratchDir dir;
  const graph::Graph g = test::small_graph();
  const probe::ProbeSet p = test::small_probe(g, 60);
  const std::string reference = dir / "reference.h5";
  std::string path = dir / "store.h5";
  Store::create(reference, g, p, false);
  Store::create(path, g, p, false);

  const auto start = std::chrono::steady_clock::now();
  run_writer(reference);
  const auto uninterrupted = std::chrono::steady_clock::now() - start;
  const auto max_delay_us = std::max<std::int64_t>(
      2000, std::chrono::duration_cast<std::chrono::microseconds>(uninterrupted).count() / 12);

  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  RecordProperty("seed", static_cast<int>(seed & 0x7fffffff));
  std::uniform_int_distribution<std::int64_t> delay(200, std::max<std::int64_t>(201, max_delay_us));
  int restarts = 0;
  int kills = 0;
  int torn = 0;
  bool finished = false;
  for (int round = 0; round < 200 && !finished; ++round) {
    const pid_t child = spawn_writer(path);
    // After ten kills the writer is left alone to finish.
    if (kills < 10 || round % 2 == 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(delay(rng)));
      ::kill(child, SIGKILL);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    if (WIFSIGNALED(status)) {
      ++kills;
      // How often a kill caught a file half-written (a temporary left behind).
      for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path())) {
        if (e.path().filename().string().find(".tmp.") != std::string::npos) {
          ++torn;
          break;
        }
      }
    } else {
      ASSERT_TRUE(WIFEXITED(status));
      ASSERT_EQ(WEXITSTATUS(status), 0) << "writer failed";
      finished = true;
    }
    {
      // A writer open repairs; then every invariant must hold.
      Store s = Store::open(path, Store::Mode::kWrite);
      const auto report = s.verify();
      ASSERT_TRUE(report.ok()) << "after kill " << kills << ": "
                               << ::testing::PrintToString(report.violations);
    }
    if (finished && kills < 10) {
      // The writer outran the delays (a loaded machine starts processes slowly and then runs
      // them fast): go on with a fresh store and shorter delays until ten kills are seen.
      ++restarts;
      path = dir / ("store-" + std::to_string(restarts) + ".h5");
      Store::create(path, g, p, false);
      delay = std::uniform_int_distribution<std::int64_t>(
          200, std::max<std::int64_t>(201, delay.max() / 2));
      finished = false;
    }
  }
  ASSERT_TRUE(finished);
  EXPECT_GE(kills, 10);
  RecordProperty("kills", kills);
  RecordProperty("restarts", restarts);
  RecordProperty("kills_mid_write", torn);
  std::printf("%d kills, %d of them with a file half-written\n", kills, torn);

  Store a = Store::open(reference, Store::Mode::kRead);
  Store b = Store::open(path, Store::Mode::kRead);
  ASSERT_EQ(b.models().size(), kModels.size());
  for (const auto& id : kModels) {
    SCOPED_TRACE(id);
    EXPECT_EQ(b.find_model(id)->status, ModelStatus::kDone);
    const Matrix ta = a.read_text_embeddings(id), tb = b.read_text_embeddings(id);
    ASSERT_EQ(ta.values.size(), tb.values.size());
    EXPECT_EQ(std::memcmp(ta.values.data(), tb.values.data(), ta.values.size() * sizeof(float)), 0);
    const auto images = static_cast<std::int64_t>(p.image_count());
    const Matrix ia = a.read_image_embeddings(id, 0, images);
    const Matrix ib = b.read_image_embeddings(id, 0, images);
    ASSERT_EQ(ia.values.size(), ib.values.size());
    EXPECT_EQ(std::memcmp(ia.values.data(), ib.values.data(), ia.values.size() * sizeof(float)), 0);
    // Provenance apart from timestamps.
    const ModelInfo ma = a.model_info(id), mb = b.model_info(id);
    EXPECT_EQ(ma.model_sha256, mb.model_sha256);
    EXPECT_EQ(ma.config_json, mb.config_json);
    EXPECT_EQ(ma.sidecar_json, mb.sidecar_json);
    EXPECT_EQ(ma.logit_scale, mb.logit_scale);
    EXPECT_EQ(ma.dim, mb.dim);
    EXPECT_EQ(ma.graph_hash, mb.graph_hash);
    EXPECT_EQ(ma.probe_hash, mb.probe_hash);
    EXPECT_EQ(a.read_labels(id).node_top1, b.read_labels(id).node_top1);
  }
}

}  // namespace
}  // namespace mll::store

namespace mll::store {
namespace {

// What a reader sees after a fault, run in a child process so that a crash shows as a signal:
// 0 = opened and verified clean, 65 = refused or reported (corruption detected), 70 = any other
// exception.
int verify_in_child(const std::string& path) {
  const pid_t child = ::fork();
  if (child == 0) {
    int rc = 0;
    try {
      const Store s = Store::open(path, Store::Mode::kRead);
      rc = s.verify().ok() ? 0 : 65;
    } catch (const DataError&) {
      rc = 65;
    } catch (const std::exception&) {
      rc = 70;
    }
    _exit(rc);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void put_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Single-bit flips anywhere in the index, finished model files and part files: every flip is
// detected before anything parses the file (the seals), so verification exits 65 every time,
// never crashes and never reads a flipped file as good.
TEST(StoreFault, EveryBitFlipInAnyStoreFileIsDetectedAndNothingCrashes) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  {
    Store s =
        Store::create(path, test::small_graph(), test::small_probe(test::small_graph(), 30), false);
    test::label_model(s, "m1");
    test::label_model(s, "m2");
    s.register_model(test::fake_record("m3"));
    for (const auto& unit : s.missing_units("m3", 8, 100)) {
      if (unit.kind == UnitKind::kImage && unit.begin >= 16) break;
      s.commit_unit("m3", unit, test::fake_rows("m3", unit).data(), test::kDim);
    }
  }
  std::vector<std::string> files = {path, path + ".d/m1.h5", path + ".d/m2.h5"};
  for (const auto& e : std::filesystem::directory_iterator(path + ".d/m3.parts")) {
    files.push_back(e.path().string());
  }
  ASSERT_GE(files.size(), 5u);
  ASSERT_EQ(verify_in_child(path), 0);
  std::mt19937 rng(20261201);
  int detected = 0, crashes = 0;
  const int flips = 120;
  for (int k = 0; k < flips; ++k) {
    const std::string& file =
        files[std::uniform_int_distribution<std::size_t>(0, files.size() - 1)(rng)];
    const std::string original = bytes_of(file);
    std::string damaged = original;
    const auto at = std::uniform_int_distribution<std::size_t>(0, damaged.size() - 1)(rng);
    const int bit = std::uniform_int_distribution<int>(0, 7)(rng);
    damaged[at] = static_cast<char>(damaged[at] ^ (1 << bit));
    put_bytes(file, damaged);
    const int rc = verify_in_child(path);
    put_bytes(file, original);
    if (rc == 65) ++detected;
    if (rc >= 128) ++crashes;
    EXPECT_EQ(rc, 65) << file << " byte " << at << " bit " << bit;
  }
  EXPECT_EQ(crashes, 0);
  EXPECT_EQ(detected, flips);
  RecordProperty("flips_detected", detected);
  EXPECT_EQ(verify_in_child(path), 0);  // restored: clean again
}

// A corrupt part or model file found by a writer open is quarantined and its rows are labeled
// again; the other models' files stay as they were.
TEST(StoreFault, AWriterQuarantinesCorruptFilesAndTheRowsAreRecomputed) {
  test::ScratchDir dir;
  const std::string path = dir / "store.h5";
  {
    Store s =
        Store::create(path, test::small_graph(), test::small_probe(test::small_graph(), 30), false);
    test::label_model(s, "m1");
    test::label_model(s, "m2");
  }
  const std::string m2 = bytes_of(path + ".d/m2.h5");
  std::string damaged = bytes_of(path + ".d/m1.h5");
  damaged[damaged.size() / 2] ^= 0x10;
  put_bytes(path + ".d/m1.h5", damaged);
  {
    Store s = Store::open(path, Store::Mode::kWrite);
    EXPECT_EQ(s.find_model("m1")->status, ModelStatus::kPending);
    EXPECT_EQ(bytes_of(path + ".quarantine/m1.h5"), damaged);
    EXPECT_EQ(s.missing_units("m1", 1000, 1000).size(), 2u);  // every caption and image again
    test::label_model(s, "m1");
    EXPECT_TRUE(s.verify().ok()) << ::testing::PrintToString(s.verify().violations);
  }
  EXPECT_EQ(bytes_of(path + ".d/m2.h5"), m2);
  EXPECT_EQ(verify_in_child(path), 0);

  // A truncated part file (a disk that lost its tail): quarantined, its rows labeled again.
  {
    Store s = Store::open(path, Store::Mode::kWrite);
    s.register_model(test::fake_record("m3"));
    const auto unit = s.missing_units("m3", 8, 100).front();
    s.commit_unit("m3", unit, test::fake_rows("m3", unit).data(), test::kDim);
  }
  std::string part;
  for (const auto& e : std::filesystem::directory_iterator(path + ".d/m3.parts")) {
    part = e.path().string();
  }
  ASSERT_FALSE(part.empty());
  std::filesystem::resize_file(part, std::filesystem::file_size(part) - 100);
  EXPECT_EQ(verify_in_child(path), 65);
  Store s = Store::open(path, Store::Mode::kWrite);
  EXPECT_FALSE(std::filesystem::exists(part));
  EXPECT_TRUE(std::filesystem::exists(path + ".quarantine/" + part.substr(part.rfind('/') + 1)));
  test::label_model(s, "m3");
  EXPECT_TRUE(s.verify().ok()) << ::testing::PrintToString(s.verify().violations);
}

}  // namespace
}  // namespace mll::store

namespace mll::store {
namespace {

// A small tmpfs mounted for one test (root only; skipped where mounting is not allowed).
class SmallDisk {
 public:
  SmallDisk(const std::string& dir, const std::string& size) : dir_(dir) {
    std::filesystem::create_directories(dir);
    mounted_ =
        std::system(
            ("mount -t tmpfs -o size=" + size + " tmpfs " + dir + " 2>/dev/null").c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted_) std::system(("umount " + dir_).c_str());
  }
  bool mounted() const { return mounted_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

std::uint64_t free_bytes(const std::string& dir) { return std::filesystem::space(dir).available; }

// Fills `dir`'s file system until `leave` bytes are free (a filler file).
void fill_disk(const std::string& dir, std::uint64_t leave) {
  const std::string filler = dir + "/filler";
  std::filesystem::remove(filler);
  std::ofstream out(filler, std::ios::binary);
  const std::string block(4096, 'x');
  while (free_bytes(dir) > leave + block.size()) out << block << std::flush;
  while (free_bytes(dir) > leave && out) out << 'x' << std::flush;
}

// The disk fills at several points of a writer's work: every attempt ends in a clean exit
// (0, or 74 naming the file), never a crash, and once space is back the store verifies and the
// work completes.
TEST(StoreFault, AFullDiskEndsInACleanIoErrorAndTheStoreStaysValid) {
  test::ScratchDir dir;
  const std::string disk = dir / "disk";
  SmallDisk mount(disk, "4m");
  if (!mount.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  const std::string path = disk + "/store.h5";
  {
    Store s = Store::create(path, test::small_graph(), test::small_probe(test::small_graph(), 300),
                            false);
    test::label_model(s, "m1");
  }
  int clean_failures = 0;
  const std::vector<std::string> models = {"m2", "m3", "m4", "m5", "m6", "m7", "m8"};
  for (const std::uint64_t leave :
       {4096ull, 16384ull, 32768ull, 49152ull, 65536ull, 81920ull, 131072ull, 262144ull}) {
    SCOPED_TRACE(leave);
    fill_disk(disk, leave);
    const pid_t child = ::fork();
    if (child == 0) {
      int rc = 0;
      try {
        Store s = Store::open(path, Store::Mode::kWrite);
        for (const auto& id : models) {
          const auto r = s.find_model(id);
          if (r && r->status == ModelStatus::kDone) continue;
          test::label_model(s, id, 50, 50);
        }
      } catch (const IoError& e) {
        std::fprintf(stderr, "%s\n", e.what());
        rc = 74;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "unexpected: %s\n", e.what());
        rc = 70;
      }
      _exit(rc);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status)) << "the writer crashed (signal " << WTERMSIG(status) << ")";
    ASSERT_TRUE(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 74) << WEXITSTATUS(status);
    if (WEXITSTATUS(status) == 74) ++clean_failures;
    std::filesystem::remove(disk + "/filler");
    EXPECT_EQ(verify_in_child(path), 0);
  }
  EXPECT_GT(clean_failures, 0);  // the disk did fill
  Store s = Store::open(path, Store::Mode::kWrite);
  for (const auto& id : models) test::label_model(s, id, 50, 50);
  EXPECT_TRUE(s.verify().ok()) << ::testing::PrintToString(s.verify().violations);
}

}  // namespace
}  // namespace mll::store
