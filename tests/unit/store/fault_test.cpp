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
  const std::string path = dir / "store.h5";
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
  std::uniform_int_distribution<std::int64_t> delay(200, max_delay_us);
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
    // A writer open repairs; then every invariant must hold.
    Store s = Store::open(path, Store::Mode::kWrite);
    const auto report = s.verify();
    ASSERT_TRUE(report.ok()) << "after kill " << kills << ": "
                             << ::testing::PrintToString(report.violations);
  }
  ASSERT_TRUE(finished);
  EXPECT_GE(kills, 10);
  RecordProperty("kills", kills);
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
