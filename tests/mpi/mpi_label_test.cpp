// Distributed labeling through mpirun at 1, 2 and 3 ranks: results independent of the rank
// count, a rank killed from outside, stop signals on one rank, an error on one rank, models
// left complete but pending.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <thread>

#include "label_world.hpp"
#include "mll/label/job.hpp"
#include "mll/store/store.hpp"
#include "mll/zoo/model_spec.hpp"
#include "run_command.hpp"
#include "signal_sweep.hpp"

namespace mll::test {
namespace {

// Small summary-label blocks so that 2 and 3 ranks share the prediction of every model.
const char* kFlags =
    " --batch 8 --unit 16 --label-block 16 --device cpu --threads 1 --decode-threads 1"
    " --no-progress";

std::string mpirun(int ranks) {
  return "timeout 300 mpirun --allow-run-as-root --oversubscribe --mca mpi_yield_when_idle 1 -np " +
         std::to_string(ranks) + " " + mll_exe();
}

class MpiLabelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v mpirun >/dev/null") != 0) GTEST_SKIP() << "mpirun not installed";
    ids_ = build_world(dir_, dir_ / "empty.h5", 30, 3, 30);
    ASSERT_FALSE(ids_.empty());
  }
  // A fresh copy of the empty store.
  std::string fresh(const std::string& name) {
    const std::string path = dir_ / name;
    copy_store(dir_ / "empty.h5", path);
    return path;
  }
  std::string label_args(const std::string& store) {
    return " label --store " + store + " --zoo " + (dir_ / "zoo.json") + kFlags;
  }
  void expect_identical(const std::string& a_path, const std::string& b_path) {
    expect_identical_stores(a_path, b_path, ids_);
  }
  void expect_verified(const std::string& store) {
    const auto r = run_mll("store verify " + store, dir_);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  ScratchDir dir_;
  std::vector<std::string> ids_;
};

TEST_F(MpiLabelTest, StoresAreIdenticalAtOneTwoAndThreeRanks) {
  const std::string reference = fresh("reference.h5");
  ASSERT_EQ(run_command(mll_exe() + label_args(reference), dir_).exit_code, 0);
  for (int ranks : {1, 2, 3}) {
    const std::string store = fresh("np" + std::to_string(ranks) + ".h5");
    const auto r = run_command(mpirun(ranks) + label_args(store), dir_);
    ASSERT_EQ(r.exit_code, 0) << ranks << " ranks: " << r.err;
    EXPECT_NE(r.out.find("labeled 3"), std::string::npos) << r.out;
    // One report, from rank 0.
    EXPECT_EQ(r.out.find("labeled"), r.out.rfind("labeled")) << r.out;
    expect_verified(store);
    expect_identical(reference, store);
  }
}

// Under a memory budget that holds one model at a time, the three models are three sub-groups:
// at 2 and 3 ranks (sub-groups sharing crops across ranks) the store is the unbounded one's.
TEST_F(MpiLabelTest, SubGroupsUnderAMemoryBudgetGiveTheSameStoreAtTwoAndThreeRanks) {
  const std::string reference = fresh("reference.h5");
  ASSERT_EQ(run_command(mll_exe() + label_args(reference) + " --memory 0", dir_).exit_code, 0);
  label::LabelOptions options;
  options.batch = 8;
  const auto one =
      label::model_memory(zoo::ZooManifest::load(dir_ / "zoo.json").load_spec(ids_[0]), options);
  const std::string budget = " --memory " + std::to_string(one.footprint() + one.weights / 2);
  for (int ranks : {2, 3}) {
    const std::string store = fresh("np" + std::to_string(ranks) + ".h5");
    const auto r = run_command(mpirun(ranks) + label_args(store) + budget + " -v", dir_);
    ASSERT_EQ(r.exit_code, 0) << ranks << " ranks: " << r.err;
    EXPECT_NE(r.err.find("labeled in 3 sub-groups"), std::string::npos) << r.err;
    expect_verified(store);
    expect_identical(reference, store);
    EXPECT_FALSE(std::filesystem::exists(store + ".crops")) << store;
  }
}

// The build without MPI (-DMLL_WITH_MPI=OFF: the self backend only) labels the same store, byte
// for byte, as the MPI build at 1, 2 and 3 ranks.
TEST_F(MpiLabelTest, TheBuildWithoutMpiGivesTheSameStore) {
  const std::string nompi = MLL_NOMPI_EXE;
  if (!std::filesystem::exists(nompi)) {
    GTEST_SKIP() << nompi << " not built (tools/build.sh --no-mpi; tools/run-tests.sh does)";
  }
  const auto version = run_command(nompi + " --version", dir_);
  ASSERT_EQ(version.exit_code, 0) << version.err;
  const std::string reference = fresh("nompi.h5");
  const auto r = run_command(nompi + label_args(reference), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("labeled 3"), std::string::npos) << r.out;
  for (int ranks : {1, 2, 3}) {
    const std::string store = fresh("np" + std::to_string(ranks) + ".h5");
    const auto m = run_command(mpirun(ranks) + label_args(store), dir_);
    ASSERT_EQ(m.exit_code, 0) << ranks << " ranks: " << m.err;
    expect_identical(reference, store);
  }
  // Started as several ranks, the build without MPI refuses rather than letting every process
  // write the store.
  const auto refused = run_command("timeout 120 mpirun --allow-run-as-root --oversubscribe -np 2 " +
                                       nompi + label_args(fresh("refused.h5")),
                                   dir_);
  EXPECT_EQ(refused.exit_code, 64) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("built without MPI"), std::string::npos) << refused.err;
}

// A model whose rows were all stored by a run that stopped before finishing it is finished by
// the next run on several ranks (before any new shard), with the labels one process computes.
TEST_F(MpiLabelTest, ModelsLeftCompleteButPendingAreFinishedByAllRanks) {
  const std::string reference = fresh("reference.h5");
  ASSERT_EQ(run_command(mll_exe() + label_args(reference), dir_).exit_code, 0);
  const std::string store_path = fresh("pending.h5");
  {
    auto store = store::Store::open(store_path, store::Store::Mode::kWrite);
    const auto specs = zoo::ZooManifest::load(dir_ / "zoo.json").load_all();
    label::LabelOptions options;
    options.progress = false;
    options.batch = 8;
    options.unit_images = 16;
    // No finish: as if stopped.
    ASSERT_EQ(commit_without_finishing(store, specs, options).size(), ids_.size());
  }
  const auto r = run_command(mpirun(3) + label_args(store_path), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("labeled 3"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("summary labels of 3 model(s) on 3 ranks"), std::string::npos) << r.err;
  expect_verified(store_path);
  expect_identical(reference, store_path);
}

// Descendants of a process named `name` (the mll ranks under timeout -> mpirun).
std::vector<pid_t> descendants_named(pid_t root, const std::string& name) {
  std::map<pid_t, std::pair<pid_t, std::string>> table;  // pid -> (parent, command)
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string entry = e.path().filename();
    if (entry.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string pid, comm, state;
    pid_t ppid = 0;
    if (!(stat >> pid >> comm >> state >> ppid)) continue;
    table[static_cast<pid_t>(std::stoi(pid))] = {ppid, comm};
  }
  std::vector<pid_t> out;
  for (const auto& [pid, info] : table) {
    if (info.second != "(" + name + ")") continue;
    for (pid_t up = info.first; up > 1; up = table.count(up) ? table[up].first : 0) {
      if (up == root) {
        out.push_back(pid);
        break;
      }
    }
  }
  return out;
}

pid_t spawn(const std::string& command, const std::string& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", ("exec " + command + " >" + log + " 2>&1").c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// Waits until the store directory changes (the job is labeling), up to 60 s.
void wait_for_progress(const std::string& store) {
  const auto count = [&] {
    const std::filesystem::recursive_directory_iterator it(store + ".d");
    return static_cast<std::size_t>(std::distance(begin(it), end(it)));
  };
  const std::size_t before = count();
  for (int i = 0; i < 6000 && count() == before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// The mll rank processes under an mpirun (mpirun -> mll).
std::vector<pid_t> ranks_of(pid_t mpirun_pid) {
  for (int i = 0; i < 500; ++i) {
    auto pids = descendants_named(mpirun_pid, "mll");
    if (pids.size() >= 2) return pids;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return {};
}

// The rank (OMPI_COMM_WORLD_RANK) of an mll process started by mpirun, or -1.
int world_rank_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  const std::string env((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string key = std::string("OMPI_COMM_WORLD_RANK=");
  const auto at = env.find(key);
  return at == std::string::npos ? -1 : std::atoi(env.c_str() + at + key.size());
}

// A rank killed from outside (SIGKILL: no handler runs) is reported by every surviving rank
// through the lifeline before the launcher ends them: one line naming the rank, its host and
// its pid, exit 74; the rerun resumes to the uninterrupted store. Rank 2 (a worker) and rank 0
// (the writer).
TEST_F(MpiLabelTest, ARankKilledFromOutsideIsReportedByTheSurvivorsAndTheRerunResumes) {
  const std::string reference = fresh("reference.h5");
  ASSERT_EQ(run_command(mll_exe() + label_args(reference), dir_).exit_code, 0);
  for (const int victim : {2, 0}) {
    SCOPED_TRACE("killing rank " + std::to_string(victim));
    const std::string store = fresh("store" + std::to_string(victim) + ".h5");
    const std::string log_path = dir_ / ("job" + std::to_string(victim) + ".log");
    const pid_t job = spawn(mpirun(3) + label_args(store), log_path);
    wait_for_progress(store);
    pid_t target = 0;
    for (int i = 0; i < 500 && target == 0; ++i) {
      for (const pid_t pid : descendants_named(job, "mll")) {
        if (world_rank_of(pid) == victim) target = pid;
      }
      if (target == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_NE(target, 0) << slurp(log_path);
    ::kill(target, SIGKILL);
    int status = 0;
    waitpid(job, &status, 0);
    const std::string log = slurp(log_path);
    EXPECT_FALSE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << log;
    // Unless the run had already finished when the kill came, each survivor said who died.
    if (log.find("labeled 3") == std::string::npos) {
      const std::string who = "rank " + std::to_string(victim) + " on host ";
      const std::string pid = "(pid " + std::to_string(target) + ") ended before the job did";
      for (int rank = 0; rank < 3; ++rank) {
        if (rank == victim) continue;
        const std::string prefix = "[rank " + std::to_string(rank) + "] error: " + who;
        std::istringstream lines(log);
        bool said = false;
        for (std::string line; std::getline(lines, line);) {
          said = said ||
                 (line.find(prefix) != std::string::npos && line.find(pid) != std::string::npos &&
                  line.find("rerun the same command to resume") != std::string::npos);
        }
        EXPECT_TRUE(said) << "rank " << rank << "\n" << log;
      }
    }
    expect_verified(store);
    const auto r = run_command(mpirun(3) + label_args(store), dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    expect_verified(store);
    expect_identical(reference, store);
  }
}

TEST_F(MpiLabelTest, AStopSignalOnOneRankStopsAllWithExit75) {
  const std::string store = fresh("store.h5");
  const pid_t job = spawn(mpirun(2) + label_args(store), dir_ / "job.log");
  wait_for_progress(store);
  const auto ranks = ranks_of(job);
  ASSERT_EQ(ranks.size(), 2u);
  ::kill(ranks.back(), SIGUSR1);
  int status = 0;
  waitpid(job, &status, 0);
  const std::string log = slurp(dir_ / "job.log");
  if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {  // it may have finished first
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 75) << log;
    EXPECT_NE(log.find("rerun"), std::string::npos) << log;
  }
  expect_verified(store);
  const auto r = run_command(mpirun(2) + label_args(store), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_verified(store);
}

// The signal contract under MPI (docs/running.md): SIGTERM or SIGUSR1 to rank 0 or rank 1 of
// `mpirun -np 2` at any moment after its main started ends every rank with 75 (or 0 once the run
// has finished), and the rerun completes the one-process store.
class MpiSignalSweep : public MpiLabelTest, public ::testing::WithParamInterface<int> {};

TEST_P(MpiSignalSweep, AStopAtAnyMomentOnEitherRankExits75AndTheRerunCompletes) {
  const int sig = GetParam();
  const std::string reference = fresh("reference.h5");
  ASSERT_EQ(run_command(mll_exe() + label_args(reference), dir_).exit_code, 0);
  for (const int target : {0, 1}) {
    for (const int ms : sweep_delays_ms()) {
      SCOPED_TRACE("rank " + std::to_string(target) + ", " + std::to_string(ms) + " ms");
      const std::string store =
          fresh("sweep-" + std::to_string(target) + "-" + std::to_string(ms) + ".h5");
      const auto start = std::chrono::steady_clock::now();
      const pid_t job = spawn(mpirun(2) + label_args(store), dir_ / "job.log");
      // The rank's process, once its main has installed the handlers.
      pid_t rank = 0;
      for (int i = 0; i < 3000 && rank == 0; ++i) {
        for (const pid_t p : descendants_named(job, "mll")) {
          if (world_rank_of(p) == target && catches(p, sig)) rank = p;
        }
        if (rank == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      sleep_until(start + std::chrono::milliseconds(ms));
      if (rank != 0) ::kill(rank, sig);  // 0: the run ended before the rank could be found
      const int rc = exit_status(job);
      EXPECT_TRUE(rc == 75 || rc == 0) << rc << ": " << slurp(dir_ / "job.log");
      const auto r = run_command(mpirun(2) + label_args(store), dir_);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      expect_identical(reference, store);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Signals, MpiSignalSweep, ::testing::Values(SIGTERM, SIGUSR1),
                         [](const auto& p) { return std::string(signal_name(p.param)); });

TEST_F(MpiLabelTest, AnErrorOnAnyRankEndsEveryRankWithOneMessage) {
  const std::string store = fresh("store.h5");
  // Damage one probe image after the probe set was built.
  const auto probe = store::Store::open(store, store::Store::Mode::kRead).probe();
  const std::string victim = probe.path_of(probe.image_count() / 2);
  std::filesystem::resize_file(victim, 20);
  const auto r = run_command(mpirun(3) + label_args(store), dir_);
  EXPECT_EQ(r.exit_code, 65) << r.err;
  const auto first = r.err.find("mll: error: ");
  ASSERT_NE(first, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("mll: error: ", first + 1), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(std::filesystem::path(victim).filename().string()), std::string::npos)
      << r.err;
  expect_verified(store);
}

}  // namespace
}  // namespace mll::test
