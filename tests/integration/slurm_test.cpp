// The Slurm machinery (slurm/, jobs/) against a real single-node Slurm started by the test:
// munged, slurmctld and slurmd on free ports in a scratch directory (environment.md), stopped
// by their pid files at the end, whatever happened. Skipped only when Slurm or munge is not
// installed.
//
// (a) a 2-task MPI labeling job (jobs/label-mpi.sbatch -> slurm/mll-launch.sh -> srun --mpi=pmix
//     mll label) gets the warning signal mid-run, exits 75, is requeued and its second run
//     completes the store;
// (b) array mode (jobs/submit-array.sh: 2 array tasks, one zoo slice each, sharing the store
//     through its writer lock) and the dependent select job run to the end.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <thread>

#include "label_world.hpp"
#include "run_command.hpp"

namespace mll::test {
namespace {

namespace fsys = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string find_program(const std::string& name) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/sbin:/usr/local/sbin:/sbin";
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find(':', start), path.size());
    const fsys::path candidate = fsys::path(path.substr(start, end - start)) / name;
    if (end > start && ::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    start = end + 1;
  }
  return "";
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// Polls `done` every 250 ms until it holds or `seconds` pass.
bool wait_for(const std::function<bool()>& done, double seconds) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return done();
}

// A single-node Slurm (slurmctld + slurmd + munged) living in `dir`.
class SlurmCluster {
 public:
  explicit SlurmCluster(std::string dir) : dir_(std::move(dir)) {}
  ~SlurmCluster() { stop(); }
  SlurmCluster(const SlurmCluster&) = delete;
  SlurmCluster& operator=(const SlurmCluster&) = delete;

  // Empty when the cluster is up, else why not.
  std::string start(const ScratchDir& scratch) {
    const std::string munged = find_program("munged");
    const std::string slurmctld = find_program("slurmctld");
    const std::string slurmd = find_program("slurmd");
    for (const auto& d : {"state", "spool", "log", "munge", "tmp"})
      fsys::create_directories(dir_ + "/" + d);
    // A key of our own: the cluster does not depend on (or touch) the machine's munge setup.
    const std::string key = dir_ + "/munge/munge.key";
    auto r = run_command("dd if=/dev/urandom of=" + key + " bs=1024 count=1 && chmod 600 " + key,
                         scratch);
    if (r.exit_code != 0) return "cannot write a munge key: " + r.err;
    started_ = true;
    r = run_command("timeout 30 " + munged + " --force --socket=" + dir_ +
                        "/munge/munge.sock --key-file=" + key + " --pid-file=" + dir_ +
                        "/munge/munged.pid --log-file=" + dir_ +
                        "/munge/munged.log --seed-file=" + dir_ + "/munge/munged.seed",
                    scratch);
    if (r.exit_code != 0) return "munged failed: " + r.err;
    std::ofstream conf(dir_ + "/slurm.conf");
    conf << "ClusterName=mll\nSlurmctldHost=localhost\n"
         << "SlurmctldPort=" << free_port() << "\nSlurmdPort=" << free_port() << "\n"
         << "SlurmUser=root\nSlurmdUser=root\n"
         << "AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket=" << dir_
         << "/munge/munge.sock\n"
         << "StateSaveLocation=" << dir_ << "/state\nSlurmdSpoolDir=" << dir_ << "/spool\n"
         << "SlurmctldPidFile=" << dir_ << "/slurmctld.pid\nSlurmdPidFile=" << dir_
         << "/slurmd.pid\n"
         << "SlurmctldLogFile=" << dir_ << "/log/slurmctld.log\nSlurmdLogFile=" << dir_
         << "/log/slurmd.log\n"
         << "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
         << "JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n"
         << "JobCompType=jobcomp/none\nSwitchType=switch/none\nMpiDefault=pmix\n"
         << "ReturnToService=2\nSchedulerType=sched/backfill\nSelectType=select/cons_tres\n"
         << "SelectTypeParameters=CR_Core\nInactiveLimit=0\nMinJobAge=300\nKillWait=5\n"
         << "Waittime=0\n"
         // Its own TmpFS: the PMIx plugin creates <TmpFS>/spmix_appdir_<uid>_<job>.<step>, and
         // two test clusters running at once both have a job 1 (the second step fails to start).
         << "TmpFS=" << dir_ << "/tmp\n"
         << "NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN\n"
         << "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP\n";
    conf.close();
    ::setenv("SLURM_CONF", (dir_ + "/slurm.conf").c_str(), 1);
    r = run_command("timeout 30 " + slurmctld + " -f " + dir_ + "/slurm.conf", scratch);
    if (r.exit_code != 0) return "slurmctld failed: " + r.err + log_tail();
    r = run_command("timeout 30 " + slurmd + " -f " + dir_ + "/slurm.conf", scratch);
    if (r.exit_code != 0) return "slurmd failed: " + r.err + log_tail();
    const bool idle = wait_for(
        [&] {
          return run_command("timeout 10 sinfo -h -o %T", scratch).out.find("idle") !=
                 std::string::npos;
        },
        30);
    if (!idle) return "the node did not become idle" + log_tail();
    return "";
  }

  // Stops the daemons by their pid files (never by name): slurmd, slurmctld, munged.
  void stop() {
    if (!started_) return;
    started_ = false;
    for (const auto& pid_file :
         {dir_ + "/slurmd.pid", dir_ + "/slurmctld.pid", dir_ + "/munge/munged.pid"}) {
      std::ifstream in(pid_file);
      pid_t pid = 0;
      if (!(in >> pid) || pid <= 1) continue;
      ::kill(pid, SIGTERM);
      const bool gone = wait_for([&] { return ::kill(pid, 0) != 0; }, 10);
      if (!gone) ::kill(pid, SIGKILL);
    }
    ::unsetenv("SLURM_CONF");
  }

  std::string log_tail() const {
    return "\n--- slurmctld.log\n" + slurp(dir_ + "/log/slurmctld.log") + "\n--- slurmd.log\n" +
           slurp(dir_ + "/log/slurmd.log");
  }

 private:
  std::string dir_;
  bool started_ = false;
};

class SlurmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const auto* program : {"munged", "slurmctld", "slurmd", "sbatch", "scontrol", "srun"}) {
      if (find_program(program).empty()) {
        GTEST_SKIP() << program << " is not installed (Debian: slurm-wlm munge)";
      }
    }
    // Slurm and munge put Unix sockets below their directories (108 bytes at most): a short
    // directory of its own, removed after the daemons stopped.
    char short_dir[] = "/tmp/mll-slurm-XXXXXX";
    ASSERT_NE(::mkdtemp(short_dir), nullptr);
    slurm_dir_ = short_dir;
    cluster_ = std::make_unique<SlurmCluster>(slurm_dir_);
    const std::string why = cluster_->start(dir_);
    ASSERT_TRUE(why.empty()) << why;
  }
  void TearDown() override {
    if (cluster_) {
      // Our cluster's jobs only (SLURM_CONF points at it), then the daemons.
      run_command("timeout 20 scancel --partition=debug", dir_);
      cluster_->stop();
    }
    std::error_code ec;
    if (!slurm_dir_.empty() && std::getenv("MLL_KEEP_TEST_DIRS") == nullptr) {
      fsys::remove_all(slurm_dir_, ec);
    }
  }

  // Graph, `per_seed` images per seed, `models` small authored models, an empty store, and the
  // config file the job scripts read (jobs/example.ini's keys with this world's paths).
  void build_world(int per_seed, int models) {
    const std::string d = world();
    fsys::create_directories(d);
    std::ofstream seeds(d + "/seeds.txt");
    for (const auto& wnid : world_seeds()) seeds << wnid << "\n";
    seeds.close();
    auto r = run_mll("graph build --seeds " + d + "/seeds.txt -o " + d + "/graph.h5", dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    write_world_images(d + "/images", world_seeds(), per_seed, 40);
    ids_ = write_world_models(d + "/models", d + "/zoo.json", models);
    r = run_mll("probe build --graph " + d + "/graph.h5 --images " + d + "/images --per-node " +
                    std::to_string(per_seed) + " --store " + d + "/store.h5",
                dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::ofstream(d + "/task.json")
        << R"({"name": "pets", "classes": ["Chihuahua", "golden retriever", "pug"]})";
    std::ofstream(config()) << "store = " << d << "/store.h5\nzoo = " << d << "/zoo.json\n"
                            << "[label]\nunit = 16\nbatch = 8\ndevice = cpu\nthreads = 1\n"
                            << "decode-threads = 1\nno-progress = true\n"
                            << "[select]\ntask = " << d << "/task.json\nout = " << d
                            << "/selection.json\n";
  }
  std::string world() const { return dir_ / "world"; }
  std::string config() const { return dir_ / "world/run.ini"; }
  std::string store() const { return dir_ / "world/store.h5"; }

  // sbatch environment: the mll under test and this source tree's slurm/ scripts.
  std::string exports() const {
    return "--export=ALL,MLL=" + mll_exe() + ",MLL_SLURM=" + source_dir() +
           "/slurm,MLL_CONFIG=" + config();
  }

  std::string show_job(const std::string& id) {
    return run_command("timeout 10 scontrol show job " + id, dir_).out;
  }
  static std::string field(const std::string& text, const std::string& key) {
    std::smatch m;
    if (std::regex_search(text, m, std::regex("\\b" + key + "=(\\S+)"))) return m[1];
    return "";
  }
  std::size_t store_files() const {
    std::size_t n = 0;
    std::error_code ec;
    for (fsys::recursive_directory_iterator it(store() + ".d", ec), end; !ec && it != end;
         it.increment(ec)) {
      n += it->is_regular_file() ? 1 : 0;
    }
    return n;
  }
  void expect_store_complete() {
    auto r = run_mll("store verify " + store(), dir_);
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    r = run_mll("inspect " + store(), dir_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (const auto& id : ids_) {
      EXPECT_TRUE(std::regex_search(r.out, std::regex(id + "\\s+done"))) << id << "\n" << r.out;
    }
  }

  ScratchDir dir_;
  std::string slurm_dir_;
  std::unique_ptr<SlurmCluster> cluster_;
  std::vector<std::string> ids_;
};

TEST_F(SlurmTest, MpiJobGetsTheWarningSignalExits75IsRequeuedAndTheRerunCompletes) {
  build_world(100, 6);
  const std::size_t empty = store_files();
  // jobs/label-mpi.sbatch asks for 2 nodes x 4 GPU tasks: on this 2-CPU node, 2 tasks of 1 CPU.
  auto r = run_command("cd " + world() + " && timeout 30 sbatch --parsable -N 1 " +
                           "--ntasks-per-node=2 -c 1 --gpus-per-task=0 " + exports() + " " +
                           source_dir() + "/jobs/label-mpi.sbatch",
                       dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string job = r.out.substr(0, r.out.find_first_of(";\n"));
  const std::string out_file = world() + "/mll-label-" + job + ".out";
  const std::string launcher_log = world() + "/mll-jobs/" + job + "/launcher.log";

  // Mid-run: the ranks have committed their first shards.
  const auto ended = [&] {
    const std::string state = field(show_job(job), "JobState");
    return state == "COMPLETED" || state == "FAILED" || state == "CANCELLED";
  };
  ASSERT_TRUE(wait_for([&] { return store_files() > empty + 2 || ended(); }, 90) && !ended())
      << show_job(job) << slurp(out_file) << cluster_->log_tail();
  r = run_command("timeout 10 scancel --signal=USR1 --batch " + job, dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // The launcher forwards the signal, mll commits and exits 75, the launcher requeues.
  ASSERT_TRUE(wait_for([&] { return field(show_job(job), "Restarts") == "1"; }, 60))
      << show_job(job) << slurp(out_file) << slurp(launcher_log);
  const std::string log = slurp(launcher_log);
  EXPECT_NE(log.find("received SIGUSR1; forwarding"), std::string::npos) << log;
  EXPECT_NE(log.find("command exited with 75"), std::string::npos) << log << slurp(out_file);
  EXPECT_NE(log.find("requeueing job " + job), std::string::npos) << log;
  r = run_mll("store verify " + store(), dir_);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;  // the interrupted run left a valid store

  // Slurm holds a requeued job for ~2 minutes before it is eligible again; start it now.
  run_command("timeout 10 scontrol update JobId=" + job + " StartTime=now", dir_);
  ASSERT_TRUE(wait_for([&] { return field(show_job(job), "JobState") == "COMPLETED"; }, 120))
      << show_job(job) << slurp(out_file) << slurp(launcher_log) << cluster_->log_tail();
  EXPECT_EQ(field(show_job(job), "ExitCode"), "0:0");
  const std::string out = slurp(out_file);
  EXPECT_NE(out.find("[rank 0]"), std::string::npos) << out;  // an MPI run, rank 0 writing
  EXPECT_NE(out.find("labeled"), std::string::npos) << out;
  expect_store_complete();

  // One environment snapshot per run of the job.
  for (const auto& run : {"run0", "run1"}) {
    const std::string snap = world() + "/mll-jobs/" + job + "/snapshot-" + job + "-" + run;
    EXPECT_NE(slurp(snap + "/env.txt").find("SLURM_JOB_ID=" + job), std::string::npos) << snap;
    EXPECT_NE(slurp(snap + "/mll-version.txt").find("mll "), std::string::npos) << snap;
    EXPECT_TRUE(fsys::exists(snap + "/modules.txt")) << snap;
  }
}

TEST_F(SlurmTest, ArrayTasksLabelZooSlicesThenTheDependentSelectJobRuns) {
  build_world(40, 4);
  // Another writer holds the store when the array starts: the tasks (two of one CPU, running
  // together) must wait for its lock and then take turns at it.
  const int lock_fd = ::open((store() + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(lock_fd, 0);
  ASSERT_EQ(::flock(lock_fd, LOCK_EX | LOCK_NB), 0);
  const std::string holder = "testhost " + std::to_string(::getpid()) + " 2000-01-01T00:00:00Z\n";
  ASSERT_EQ(::pwrite(lock_fd, holder.data(), holder.size(), 0),
            static_cast<ssize_t>(holder.size()));
  auto r =
      run_command("cd " + world() + " && timeout 60 " + source_dir() +
                      "/jobs/submit-array.sh --array 0-1 -- -c 1 --gpus-per-task=0 " + exports(),
                  dir_);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("label array job (\\d+)"))) << r.out;
  const std::string array_job = m[1];
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex("select job (\\d+)"))) << r.out;
  const std::string select_job = m[1];
  EXPECT_NE(field(show_job(select_job), "Dependency"), "(null)") << show_job(select_job);
  const std::string launcher_log = world() + "/mll-jobs/" + array_job + "/launcher.log";
  const bool refused = wait_for(
      [&] {
        const std::string log = slurp(launcher_log);
        const auto first = log.find("waiting for the store lock");
        return first != std::string::npos &&
               log.find("waiting for the store lock", first + 1) != std::string::npos;
      },
      60);
  ::close(lock_fd);  // releases the lock
  ASSERT_TRUE(refused) << slurp(launcher_log) << show_job(array_job);

  ASSERT_TRUE(wait_for([&] { return field(show_job(select_job), "JobState") == "COMPLETED"; }, 150))
      << show_job(array_job) << show_job(select_job)
      << slurp(world() + "/mll-jobs/" + array_job + "/launcher.log") << cluster_->log_tail();
  // Every array task completed and labeled its own slice.
  const std::string array_state = show_job(array_job);
  std::size_t completed = 0;
  for (auto at = array_state.find("JobState=COMPLETED"); at != std::string::npos;
       at = array_state.find("JobState=COMPLETED", at + 1)) {
    ++completed;
  }
  EXPECT_EQ(completed, 2u) << array_state;
  for (int task = 0; task < 2; ++task) {
    const std::string out =
        slurp(world() + "/mll-label-array-" + array_job + "_" + std::to_string(task) + ".out");
    const std::string slice =
        task == 0 ? ids_[0] + "," + ids_[2] : ids_[1] + "," + ids_[3];  // dealt round-robin
    EXPECT_NE(out.find("models " + slice), std::string::npos) << out;
    // The waits read as waits: no error line for a refusal the launcher retries.
    EXPECT_EQ(out.find("mll: error:"), std::string::npos) << out;
    EXPECT_NE(out.find("labeled 2"), std::string::npos) << out;
  }
  expect_store_complete();
  EXPECT_TRUE(fsys::exists(world() + "/selection.json"))
      << slurp(world() + "/mll-select-" + select_job + ".out");
  EXPECT_NE(slurp(world() + "/mll-select-" + select_job + ".out").find("selection for task pets"),
            std::string::npos);
}

}  // namespace
}  // namespace mll::test
