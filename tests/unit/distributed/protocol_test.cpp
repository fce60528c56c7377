// The labeling driver's coordinator/worker protocol on the local backend, 1..5 ranks as threads
// of this process with real authored models and a real store: results equal one process's, a
// stop mid-shard on one rank, an error on one rank, a failed model, models left complete but
// pending, and more ranks than shards (the last shard runs while the others are idle). The
// subprocess tests (tests/mpi) cover the same through mpirun, with kills.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include "label_world.hpp"
#include "mll/distributed/comm.hpp"
#include "mll/distributed/label.hpp"
#include "mll/store/store.hpp"
#include "mll/zoo/runner.hpp"
#include "run_command.hpp"

namespace mll::test {
namespace {

using distributed::Comm;

// A StopFlag that raises itself at the n-th poll of the rank's compute thread (polls of the
// rank's main thread, the coordinator's loop, do not count): a stop signal that reaches one
// rank in the middle of its work, which a real signal (to the whole process) cannot do.
class StopAtPoll final : public StopFlag {
 public:
  explicit StopAtPoll(int n) : n_(n) {}
  void bind_main_thread() { main_ = std::this_thread::get_id(); }
  bool requested() const noexcept override {
    if (std::this_thread::get_id() != main_ && ++polls_ == n_) {
      const_cast<StopAtPoll*>(this)->request(SIGUSR1);
    }
    return StopFlag::requested();
  }

 private:
  int n_;
  std::thread::id main_;
  mutable std::atomic<int> polls_{0};
};

// How one rank's call ended.
struct RankEnd {
  std::optional<label::LabelReport> report;
  ExitCode code = ExitCode::kOk;
  std::string message;
};

class ProtocolTest : public ::testing::TestWithParam<int> {
 protected:
  static void SetUpTestSuite() { zoo::set_threads(1); }

  void SetUp() override {
    ids_ = build_world(dir_, dir_ / "empty.h5", 24, 2, 24);
    ASSERT_FALSE(ids_.empty());
    options_.batch = 8;
    options_.unit_images = 16;
    options_.label_block = 16;
    options_.decode_threads = 1;
    options_.progress = false;
  }

  std::string fresh(const std::string& name) {
    const std::string path = dir_ / name;
    copy_store(dir_ / "empty.h5", path);
    return path;
  }
  std::vector<zoo::ModelSpec> specs() const {
    return zoo::ZooManifest::load(dir_ / "zoo.json").load_all();
  }
  std::string reference() {
    const std::string path = fresh("reference.h5");
    const auto report = distributed::label_here(path, specs(), options_);
    EXPECT_EQ(report.labeled.size(), ids_.size());
    return path;
  }

  // Labels `store` on `ranks` local ranks, each with its options and stop flag.
  std::vector<RankEnd> label_on(int ranks, const std::string& store,
                                const std::vector<label::LabelOptions>& options,
                                std::vector<std::unique_ptr<StopFlag>>& stops) {
    auto comms = Comm::local(ranks);
    std::vector<RankEnd> ends(static_cast<std::size_t>(ranks));
    const auto all = specs();
    std::vector<std::thread> threads;
    for (int r = 0; r < ranks; ++r) {
      threads.emplace_back([&, r] {
        auto& stop = *stops[static_cast<std::size_t>(r)];
        if (auto* at = dynamic_cast<StopAtPoll*>(&stop)) at->bind_main_thread();
        auto& end = ends[static_cast<std::size_t>(r)];
        try {
          end.report = distributed::label(comms[static_cast<std::size_t>(r)], store, all,
                                          options[static_cast<std::size_t>(r)], stop);
        } catch (const Error& e) {
          end.code = e.code();
          end.message = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    return ends;
  }
  std::vector<RankEnd> label_on(int ranks, const std::string& store) {
    std::vector<std::unique_ptr<StopFlag>> stops;
    for (int r = 0; r < ranks; ++r) stops.push_back(std::make_unique<StopFlag>());
    return label_on(ranks, store, std::vector<label::LabelOptions>(ranks, options_), stops);
  }

  void expect_identical(const std::string& a_path, const std::string& b_path) {
    const auto a = store::Store::open(a_path, store::Store::Mode::kRead);
    const auto b = store::Store::open(b_path, store::Store::Mode::kRead);
    const auto images = static_cast<std::int64_t>(a.probe().image_count());
    for (const auto& id : ids_) {
      ASSERT_TRUE(b.find_model(id)) << id;
      EXPECT_EQ(b.find_model(id)->status, store::ModelStatus::kDone) << id;
      EXPECT_EQ(a.read_text_embeddings(id).values, b.read_text_embeddings(id).values) << id;
      EXPECT_EQ(a.read_image_embeddings(id, 0, images).values,
                b.read_image_embeddings(id, 0, images).values)
          << id;
      const auto la = a.read_labels(id), lb = b.read_labels(id);
      EXPECT_EQ(la.node_top1, lb.node_top1) << id;
      EXPECT_EQ(la.node_confusion, lb.node_confusion) << id;
      EXPECT_EQ(la.subtree_top1, lb.subtree_top1) << id;
    }
    EXPECT_TRUE(b.verify().ok()) << b_path;
  }

  ScratchDir dir_;
  std::vector<std::string> ids_;
  label::LabelOptions options_;
};

// Ranks beyond the GPUs of a node go round robin, and each GPU's budget is split between the
// ranks on it: 4 ranks on 2 GPUs, 2 each; 5 on 2, 3 on GPU 0 and 2 on GPU 1.
TEST(DeviceSharing, RanksOnAGpuAreThoseTheRoundRobinPutsThere) {
  EXPECT_EQ(distributed::ranks_on_device(4, 2, 0), 2);
  EXPECT_EQ(distributed::ranks_on_device(4, 2, 1), 2);
  EXPECT_EQ(distributed::ranks_on_device(5, 2, 0), 3);
  EXPECT_EQ(distributed::ranks_on_device(5, 2, 1), 2);
  EXPECT_EQ(distributed::ranks_on_device(3, 8, 2), 1);
  EXPECT_EQ(distributed::ranks_on_device(1, 1, 0), 1);
  for (int size = 1; size <= 9; ++size) {
    for (int devices = 1; devices <= 4; ++devices) {
      int sum = 0;
      for (int index = 0; index < devices; ++index)
        sum += distributed::ranks_on_device(size, devices, index);
      EXPECT_EQ(sum, size) << size << " ranks on " << devices << " GPUs";
    }
  }
  EXPECT_THROW(distributed::ranks_on_device(4, 2, 2), UsageError);
  EXPECT_THROW(distributed::ranks_on_device(0, 2, 0), UsageError);
}

TEST_P(ProtocolTest, EveryRankCountGivesTheOneProcessStore) {
  const int ranks = GetParam();
  const std::string ref = reference();
  const std::string store = fresh("ranks.h5");
  const auto ends = label_on(ranks, store);
  for (int r = 0; r < ranks; ++r) {
    ASSERT_EQ(ends[r].code, ExitCode::kOk) << "rank " << r << ": " << ends[r].message;
  }
  ASSERT_TRUE(ends[0].report);
  EXPECT_EQ(ends[0].report->labeled.size(), ids_.size());
  for (int r = 1; r < ranks; ++r) EXPECT_TRUE(ends[r].report->labeled.empty()) << r;
  expect_identical(ref, store);
}

// One shard per kind: with more ranks than shards, the idle ranks are told "no more work" at
// once and wait in the collective finish while the last shard runs.
TEST_P(ProtocolTest, TheLastShardRunsWhileOtherRanksAreIdle) {
  options_.unit_images = 1 << 20;
  const int ranks = GetParam();
  const std::string ref = reference();
  const std::string store = fresh("idle.h5");
  const auto ends = label_on(ranks, store);
  for (int r = 0; r < ranks; ++r) ASSERT_EQ(ends[r].code, ExitCode::kOk) << ends[r].message;
  expect_identical(ref, store);
}

// A stop on the last rank, at its compute thread's first poll (after its first batch),
// stops every rank with Interrupted; what was committed verifies, and a rerun on the same ranks
// completes the one-process store.
TEST_P(ProtocolTest, AStopMidShardOnOneRankStopsEveryRankAndTheRerunFinishes) {
  const int ranks = GetParam();
  const std::string ref = reference();
  const std::string store = fresh("stopped.h5");
  std::vector<std::unique_ptr<StopFlag>> stops;
  for (int r = 0; r < ranks; ++r) {
    if (r == ranks - 1) {
      stops.push_back(std::make_unique<StopAtPoll>(1));
    } else {
      stops.push_back(std::make_unique<StopFlag>());
    }
  }
  const auto ends =
      label_on(ranks, store, std::vector<label::LabelOptions>(ranks, options_), stops);
  for (int r = 0; r < ranks; ++r) {
    EXPECT_EQ(ends[r].code, ExitCode::kInterrupted) << "rank " << r << ": " << ends[r].message;
    EXPECT_NE(ends[r].message.find("stopped by signal " + std::to_string(SIGUSR1)),
              std::string::npos)
        << ends[r].message;
  }
  {
    const auto s = store::Store::open(store, store::Store::Mode::kRead);
    EXPECT_TRUE(s.verify().ok());
  }
  const auto rerun = label_on(ranks, store);
  for (int r = 0; r < ranks; ++r) ASSERT_EQ(rerun[r].code, ExitCode::kOk) << rerun[r].message;
  expect_identical(ref, store);
}

// An error on one rank (its device cannot be used) ends every rank with that error, named.
TEST_P(ProtocolTest, AnErrorOnOneRankEndsEveryRankWithItsMessage) {
  if (zoo::cuda_available()) GTEST_SKIP() << "a CUDA device is visible: cuda:0 would work";
  const int ranks = GetParam();
  const int bad = ranks / 2;
  std::vector<label::LabelOptions> options(ranks, options_);
  options[bad].run.device.kind = zoo::Device::Kind::kCuda;
  std::vector<std::unique_ptr<StopFlag>> stops;
  for (int r = 0; r < ranks; ++r) stops.push_back(std::make_unique<StopFlag>());
  const std::string store = fresh("error.h5");
  const auto ends = label_on(ranks, store, options, stops);
  const std::string prefix = ranks > 1 ? "rank " + std::to_string(bad) + ": " : "";
  for (int r = 0; r < ranks; ++r) {
    EXPECT_EQ(ends[r].code, ExitCode::kUsage) << "rank " << r << ": " << ends[r].message;
    EXPECT_EQ(ends[r].message.rfind(prefix, 0), 0u) << ends[r].message;
    EXPECT_NE(ends[r].message.find("cuda:0 is not available"), std::string::npos)
        << ends[r].message;
    EXPECT_EQ(ends[r].message, ends[0].message);
  }
  const auto s = store::Store::open(store, store::Store::Mode::kRead);
  EXPECT_TRUE(s.verify().ok());
}

// A model whose file is not TorchScript fails on whichever rank loads it; it is recorded as
// failed, its other shards are not handed out, and the other models finish.
TEST_P(ProtocolTest, AFailedModelIsRecordedAndTheOthersFinish) {
  const int ranks = GetParam();
  const std::string ref = reference();
  auto spec = zoo::ZooManifest::load(dir_ / "zoo.json").load_spec("small-0");
  spec.id = "broken";
  spec.model_file = "broken.pt";
  std::ofstream(dir_ / "models/broken.pt") << "this is not a TorchScript archive";
  zoo::save_sidecar(spec, dir_ / "models/broken.json");
  auto manifest = zoo::ZooManifest::load(dir_ / "zoo.json");
  manifest.add_sidecar(dir_ / "models/broken.json");
  manifest.save();
  const std::string store = fresh("failed.h5");
  const auto ends = label_on(ranks, store);
  for (int r = 0; r < ranks; ++r) ASSERT_EQ(ends[r].code, ExitCode::kOk) << ends[r].message;
  EXPECT_EQ(ends[0].report->failed, std::vector<std::string>{"broken"});
  EXPECT_EQ(ends[0].report->labeled.size(), ids_.size());
  expect_identical(ref, store);
  const auto s = store::Store::open(store, store::Store::Mode::kRead);
  EXPECT_EQ(s.find_model("broken")->status, store::ModelStatus::kFailed);
}

// Models whose rows a stopped run stored completely but did not finish are finished by the
// next run, before any shard, with the labels of one process.
TEST_P(ProtocolTest, ModelsLeftCompleteButPendingAreFinished) {
  const int ranks = GetParam();
  const std::string ref = reference();
  const std::string store = fresh("pending.h5");
  {
    auto s = store::Store::open(store, store::Store::Mode::kWrite);
    const auto complete = commit_without_finishing(s, specs(), options_);
    ASSERT_EQ(complete.size(), ids_.size());
  }
  const auto ends = label_on(ranks, store);
  for (int r = 0; r < ranks; ++r) ASSERT_EQ(ends[r].code, ExitCode::kOk) << ends[r].message;
  EXPECT_EQ(ends[0].report->labeled.size(), ids_.size());
  expect_identical(ref, store);
}

INSTANTIATE_TEST_SUITE_P(Ranks, ProtocolTest, ::testing::Values(1, 2, 3, 4, 5));

}  // namespace
}  // namespace mll::test
