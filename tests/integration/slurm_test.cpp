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
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <regex>
#include <sstream>
#include <thread>

#include "label_world.hpp"
#include "run_command.hpp"
#include "signal_sweep.hpp"

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

// A Slurm (slurmctld + slurmd per node + munged) living in `dir`. One node on the loopback, or
// two "nodes" in network namespaces of their own joined by a veth pair (environment.md): each
// has its own network stack, so srun/PMIx and Open MPI talk TCP between them as between hosts.
// The addresses exist only inside the namespaces this cluster creates.
class SlurmCluster {
 public:
  SlurmCluster(std::string dir, int nodes) : dir_(std::move(dir)), nodes_(nodes) {
    const std::string tag = std::to_string(::getpid());
    ns_ = {"mll" + tag + "a", "mll" + tag + "b"};
  }
  ~SlurmCluster() { stop(); }
  SlurmCluster(const SlurmCluster&) = delete;
  SlurmCluster& operator=(const SlurmCluster&) = delete;

  // Runs a Slurm client command where the controller is reachable (inside node 1's namespace).
  std::string in_cluster(const std::string& command) const {
    return nodes_ == 1 ? command : "nsenter --net=/run/netns/" + ns_[0] + " " + command;
  }

  // Empty when the cluster is up; otherwise why not, and *skip is set when the machine cannot
  // host it at all (no network namespaces: not root, a container without the capability).
  std::string start(const ScratchDir& scratch, bool* skip) {
    *skip = false;
    const std::string munged = find_program("munged");
    const std::string slurmctld = find_program("slurmctld");
    const std::string slurmd = find_program("slurmd");
    for (const auto& d : {"state", "log", "munge", "spool-n1", "spool-n2", "tmp-n1", "tmp-n2"})
      fsys::create_directories(dir_ + "/" + d);
    if (nodes_ == 2) {
      const std::string why = make_namespaces(scratch);
      if (!why.empty()) {
        *skip = true;
        return why;
      }
    }
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
    write_conf();
    ::setenv("SLURM_CONF", (dir_ + "/slurm.conf").c_str(), 1);
    const std::string conf = " -f " + dir_ + "/slurm.conf";
    r = run_command("timeout 30 " + in_node(0, slurmctld + conf), scratch);
    if (r.exit_code != 0) return "slurmctld failed: " + r.err + log_tail();
    for (int node = 0; node < nodes_; ++node) {
      r = run_command(
          "timeout 30 " + in_node(node, slurmd + conf + " -N n" + std::to_string(node + 1)),
          scratch);
      if (r.exit_code != 0) return "slurmd failed: " + r.err + log_tail();
    }
    const bool idle = wait_for([&] { return idle_nodes(scratch) == nodes_; }, 30);
    if (!idle) return "the nodes did not become idle" + log_tail();
    return "";
  }

  // The processes running in node `node`'s network namespace (two-node clusters).
  std::vector<pid_t> pids_on_node(int node) const { return pids_in(ns_[node]); }

  // How many nodes are idle (none allocated, none completing).
  int idle_nodes(const ScratchDir& scratch) const {
    const std::string out = run_command(in_cluster("timeout 10 sinfo -h -N -o %T"), scratch).out;
    int n = 0;
    for (auto at = out.find("idle"); at != std::string::npos; at = out.find("idle", at + 1)) ++n;
    return n;
  }

  // Stops the daemons by their pid files (never by name), then removes the namespaces (and the
  // veth pair with them).
  void stop() {
    if (started_) {
      started_ = false;
      for (const auto& pid_file : {dir_ + "/slurmd-n1.pid", dir_ + "/slurmd-n2.pid",
                                   dir_ + "/slurmctld.pid", dir_ + "/munge/munged.pid"}) {
        std::ifstream in(pid_file);
        pid_t pid = 0;
        if (!(in >> pid) || pid <= 1) continue;
        ::kill(pid, SIGTERM);
        const bool gone = wait_for([&] { return ::kill(pid, 0) != 0; }, 10);
        if (!gone) ::kill(pid, SIGKILL);
      }
      ::unsetenv("SLURM_CONF");
    }
    if (namespaces_) {
      namespaces_ = false;
      // Whatever still runs in them (a job's stepd, srun or ranks) would keep them alive.
      for (int node = 0; node < 2; ++node) {
        for (const pid_t pid : pids_in(ns_[node])) ::kill(pid, SIGKILL);
      }
      for (const auto& ns : ns_) std::system(("ip netns del " + ns + " 2>/dev/null").c_str());
      // A veth left in this namespace by a set-up that failed half-way.
      std::system(("ip link del v" + ns_[0] + " 2>/dev/null").c_str());
    }
  }

  std::string log_tail() const {
    std::string out = "\n--- slurmctld.log\n" + slurp(dir_ + "/log/slurmctld.log");
    for (int node = 1; node <= nodes_; ++node) {
      const std::string name = "slurmd-n" + std::to_string(node) + ".log";
      out += "\n--- " + name + "\n" + slurp(dir_ + "/log/" + name);
    }
    return out;
  }

 private:
  // The command run inside node `node`'s network namespace (nsenter, not `ip netns exec`, which
  // remounts /sys and hides the cgroup file system from slurmd).
  std::string in_node(int node, const std::string& command) const {
    return nodes_ == 1 ? command : "nsenter --net=/run/netns/" + ns_[node] + " " + command;
  }

  static std::vector<pid_t> pids_in(const std::string& ns) {
    std::vector<pid_t> pids;
    FILE* out = ::popen(("ip netns pids " + ns + " 2>/dev/null").c_str(), "r");
    if (out == nullptr) return pids;
    for (long pid = 0; std::fscanf(out, "%ld", &pid) == 1;) pids.push_back(static_cast<pid_t>(pid));
    ::pclose(out);
    return pids;
  }

  std::string make_namespaces(const ScratchDir& scratch) {
    const std::string a = ns_[0], b = ns_[1];
    const std::string va = "v" + a, vb = "v" + b;  // interface names: 15 characters at most
    auto r = run_command("ip netns add " + a, scratch);
    if (r.exit_code != 0) return "cannot create a network namespace (needs root): " + r.err;
    namespaces_ = true;
    r = run_command("ip netns add " + b + " && ip link add " + va + " type veth peer name " + vb +
                        " && ip link set " + va + " netns " + a + " && ip link set " + vb +
                        " netns " + b + " && ip -n " + a + " addr add " + kAddress[0] + "/30 dev " +
                        va + " && ip -n " + b + " addr add " + kAddress[1] + "/30 dev " + vb +
                        " && ip -n " + a + " link set lo up && ip -n " + b +
                        " link set lo up && ip -n " + a + " link set " + va + " up && ip -n " + b +
                        " link set " + vb + " up",
                    scratch);
    if (r.exit_code != 0) return "cannot join the namespaces with a veth pair: " + r.err;
    return "";
  }

  void write_conf() const {
    std::ofstream conf(dir_ + "/slurm.conf");
    conf << "ClusterName=mll\n"
         << (nodes_ == 1 ? std::string("SlurmctldHost=localhost\n")
                         : "SlurmctldHost=localhost(" + std::string(kAddress[0]) + ")\n")
         << "SlurmctldPort=" << free_port() << "\nSlurmdPort=" << free_port() << "\n"
         << "SlurmUser=root\nSlurmdUser=root\n"
         << "AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket=" << dir_
         << "/munge/munge.sock\n"
         << "StateSaveLocation=" << dir_ << "/state\nSlurmdSpoolDir=" << dir_ << "/spool-%n\n"
         << "SlurmctldPidFile=" << dir_ << "/slurmctld.pid\nSlurmdPidFile=" << dir_
         << "/slurmd-%n.pid\n"
         << "SlurmctldLogFile=" << dir_ << "/log/slurmctld.log\nSlurmdLogFile=" << dir_
         << "/log/slurmd-%n.log\n"
         << "ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n"
         << "JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n"
         << "JobCompType=jobcomp/none\nSwitchType=switch/none\nMpiDefault=pmix\n"
         << "ReturnToService=2\nSchedulerType=sched/backfill\nSelectType=select/cons_tres\n"
         << "SelectTypeParameters=CR_Core\nInactiveLimit=0\nMinJobAge=300\nKillWait=5\n"
         << "Waittime=0\n"
         // A TmpFS per node and per cluster: the PMIx plugin creates
         // <TmpFS>/spmix_appdir_<uid>_<job>.<step> on every node, and two test clusters running
         // at once both have a job 1 (the second step would fail to start).
         << "TmpFS=" << dir_ << "/tmp-%n\n";
    if (nodes_ == 1) {
      conf << "NodeName=n1 NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN\n"
           << "PartitionName=debug Nodes=n1 Default=YES MaxTime=INFINITE State=UP\n";
    } else {
      conf << "NodeName=n1 NodeAddr=" << kAddress[0] << " CPUs=1 State=UNKNOWN\n"
           << "NodeName=n2 NodeAddr=" << kAddress[1] << " CPUs=1 State=UNKNOWN\n"
           << "PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP\n";
    }
  }

  // A /30 of the private range, used only inside this cluster's namespaces.
  static constexpr const char* kAddress[2] = {"10.254.77.1", "10.254.77.2"};

  std::string dir_;
  int nodes_;
  std::vector<std::string> ns_;
  bool started_ = false;
  bool namespaces_ = false;
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
    cluster_ = std::make_unique<SlurmCluster>(slurm_dir_, nodes_);
    bool skip = false;
    const std::string why = cluster_->start(dir_, &skip);
    if (skip) GTEST_SKIP() << why;
    ASSERT_TRUE(why.empty()) << why;
  }
  void TearDown() override {
    if (cluster_) {
      // Our cluster's jobs only (SLURM_CONF points at it), then the daemons.
      run_command(slurm("timeout 20 scancel --partition=debug"), dir_);
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

  // A Slurm client command of this test's cluster.
  std::string slurm(const std::string& command) const { return cluster_->in_cluster(command); }
  std::string show_job(const std::string& id) {
    return run_command(slurm("timeout 10 scontrol show job " + id), dir_).out;
  }
  // Submits an sbatch file from the world folder; returns the job id.
  std::string submit(const std::string& options, const std::string& file) {
    const auto r = run_command("cd " + world() + " && " +
                                   slurm("timeout 30 sbatch --parsable " + options + " " +
                                         exports() + " " + source_dir() + "/jobs/" + file),
                               dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, r.out.find_first_of(";\n"));
  }
  // The job's folder in a slurmd spool ("job00012").
  static std::string job_folder(const std::string& job) {
    char folder[32];
    std::snprintf(folder, sizeof folder, "job%05d", std::atoi(job.c_str()));
    return folder;
  }
  // Waits until the batch script of `job` runs, polling every 2 ms: a process whose environment
  // holds this job's id and this cluster's SLURM_CONF (the script from its exec on, and what it
  // execs; not slurmstepd, and not another test cluster's job of the same id). Returns whether
  // it did within `seconds`.
  // Waits until the job's batch shell catches USR1 and TERM (its first lines set the traps):
  // before that no shell script can catch a signal, and docs/running.md ("The signal contract")
  // leaves bash's own start-up unguarded. Found by its environment, the handlers by SigCgt.
  bool wait_for_batch_traps(const std::string& job, double seconds) const {
    const std::string id = std::string("SLURM_JOB_ID=") + job + '\0';
    const std::string conf = "SLURM_CONF=" + slurm_dir_ + "/slurm.conf";
    const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < deadline) {
      std::error_code ec;
      for (fsys::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        // POSIX reads: the process may end while it is read (a stream would throw).
        const std::string environ = read_proc(it->path() / "environ");
        if (environ.find(id) == std::string::npos || environ.find(conf) == std::string::npos) {
          continue;
        }
        const std::string status = read_proc(it->path() / "status");
        const auto at = status.find("SigCgt:\t");
        if (at == std::string::npos) continue;
        const unsigned long long caught = std::stoull(status.substr(at + 8, 16), nullptr, 16);
        const unsigned long long wanted = (1ull << (SIGUSR1 - 1)) | (1ull << (SIGTERM - 1));
        if ((caught & wanted) == wanted) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
  }

  static std::string read_proc(const fsys::path& file) {
    std::string text;
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return text;
    char buffer[16384];
    for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) {
      text.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return text;
  }
  // Keeps a copy of the empty store (for fresh_store) and labels another copy in one process:
  // the reference every job's store must equal. Returns the reference's path.
  std::string keep_empty_and_label_reference() {
    copy_store(store(), empty_store());
    const std::string reference = world() + "/reference.h5";
    copy_store(store(), reference);
    const auto r = run_mll("label -c " + config() + " --store " + reference, dir_);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return reference;
  }
  std::string empty_store() const { return world() + "/empty.h5"; }
  // The store back to the empty copy.
  void fresh_store() {
    std::error_code ec;
    fsys::remove(store(), ec);
    fsys::remove_all(store() + ".d", ec);
    copy_store(empty_store(), store());
  }
  bool job_ended(const std::string& job) {
    const std::string state = field(show_job(job), "JobState");
    return state == "COMPLETED" || state == "FAILED" || state == "CANCELLED";
  }
  // A job that requeued itself waits ~2 minutes before it is eligible again; start it now, but
  // only once its first run has left every node: slurmd refuses a batch job whose credential it
  // revoked within the same second ("already killed, do not launch batch job"), and the first
  // run's slurmstepd removes the job's spool folder (same job id, same folder) when it ends,
  // which would delete the new run's script under it ("execve(): ... slurm_script: No such
  // file").
  void release_requeued(const std::string& job) {
    const auto spool_left = [&] {
      for (int node = 1; node <= nodes_; ++node) {
        const std::string spool =
            slurm_dir_ + "/spool-n" + std::to_string(node) + "/" + job_folder(job);
        if (fsys::exists(spool)) return true;
      }
      return false;
    };
    ASSERT_TRUE(wait_for(
        [&] {
          return field(show_job(job), "JobState") == "PENDING" &&
                 cluster_->idle_nodes(dir_) == nodes_ && !spool_left();
        },
        60))
        << show_job(job);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    run_command(slurm("timeout 10 scontrol update JobId=" + job + " StartTime=now"), dir_);
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

  int nodes_ = 1;
  ScratchDir dir_;
  std::string slurm_dir_;
  std::unique_ptr<SlurmCluster> cluster_;
  std::vector<std::string> ids_;
};

TEST_F(SlurmTest, MpiJobGetsTheWarningSignalExits75IsRequeuedAndTheRerunCompletes) {
  build_world(100, 6);
  const std::size_t empty = store_files();
  // jobs/label-mpi.sbatch asks for 2 nodes x 4 GPU tasks: on this 2-CPU node, 2 tasks of 1 CPU.
  const std::string job =
      submit("-N 1 --ntasks-per-node=2 -c 1 --gpus-per-task=0", "label-mpi.sbatch");
  ASSERT_FALSE(job.empty());
  const std::string out_file = world() + "/mll-label-" + job + ".out";
  const std::string launcher_log = world() + "/mll-jobs/" + job + "/launcher.log";

  // Mid-run: the ranks have committed their first shards.
  ASSERT_TRUE(wait_for([&] { return store_files() > empty + 2 || job_ended(job); }, 90) &&
              !job_ended(job))
      << show_job(job) << slurp(out_file) << cluster_->log_tail();
  auto r = run_command(slurm("timeout 10 scancel --signal=USR1 --batch " + job), dir_);
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

  release_requeued(job);
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
  auto r = run_command(
      "cd " + world() + " && " +
          slurm("timeout 60 " + source_dir() +
                "/jobs/submit-array.sh --array 0-1 -- -c 1 --gpus-per-task=0 " + exports()),
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

// The signal contract through the launcher (docs/running.md): USR1 or TERM to the batch shell
// at any moment after the batch script's exec, ends in a requeue (exit 75) or, when
// mll had already finished, in exit 0; either way the job ends COMPLETED and the store is the
// uninterrupted run's.
TEST_F(SlurmTest, AWarningSignalAtAnyMomentOfTheJobRequeuesItAndItEndsCompleted) {
  build_world(60, 2);  // a run of a few seconds: most signals land while mll runs
  const std::string reference = keep_empty_and_label_reference();
  int requeued = 0;
  for (const char* signal : {"USR1", "TERM"}) {
    for (const int delay_ms : sweep_delays_ms()) {
      const std::string what =
          std::string("SIG") + signal + " at " + std::to_string(delay_ms) + " ms";
      SCOPED_TRACE(what);
      fresh_store();
      const std::string job = submit("-n 1 -c 1 --gpus-per-task=0", "label-mpi.sbatch");
      ASSERT_FALSE(job.empty());
      // From the moment the batch shell has its traps, as for a process started by hand; the
      // job's RUNNING state comes earlier, while slurmstepd still sets the step up.
      ASSERT_TRUE(wait_for_batch_traps(job, 60)) << show_job(job);
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      run_command(slurm("timeout 10 scancel --signal=" + std::string(signal) + " --batch " + job),
                  dir_);
      const std::string launcher_log = world() + "/mll-jobs/" + job + "/launcher.log";
      const std::string out_file = world() + "/mll-label-" + job + ".out";
      // Requeued (then released here) or finished before the signal mattered.
      ASSERT_TRUE(wait_for(
          [&] {
            const std::string shown = show_job(job);
            return field(shown, "Restarts") == "1" || field(shown, "JobState") == "COMPLETED" ||
                   field(shown, "JobState") == "FAILED";
          },
          90))
          << show_job(job) << slurp(launcher_log);
      if (field(show_job(job), "Restarts") == "1") {
        ++requeued;
        EXPECT_NE(slurp(launcher_log).find("command exited with 75"), std::string::npos)
            << slurp(launcher_log);
        release_requeued(job);
      }
      ASSERT_TRUE(wait_for([&] { return job_ended(job); }, 120))
          << show_job(job) << slurp(launcher_log) << cluster_->log_tail();
      EXPECT_EQ(field(show_job(job), "JobState"), "COMPLETED")
          << show_job(job) << slurp(out_file) << slurp(launcher_log);
      EXPECT_EQ(field(show_job(job), "ExitCode"), "0:0") << slurp(launcher_log);
      expect_store_complete();
      expect_identical_stores(reference, store(), ids_);
    }
  }
  // The signals came early enough to matter at least at the short delays.
  EXPECT_GT(requeued, 0);
  std::cout << "requeued " << requeued << " of 16 signalled jobs (the others had finished)\n";
}

// Two nodes (network namespaces), one MPI rank each: `sbatch -N 2 jobs/label-mpi.sbatch` gives
// the store one process gives; a warning signal mid-run reaches the rank on each node, the job
// requeues and its rerun finishes to that same store. A rank killed on the second node is
// reported by the rank on the first.
class TwoNodeSlurmTest : public SlurmTest {
 protected:
  TwoNodeSlurmTest() { nodes_ = 2; }
  // The ranks are on two network stacks: Open MPI needs its TCP transport (the test main
  // limits it to shared memory for single-node runs).
  void SetUp() override {
    const char* btl = std::getenv("OMPI_MCA_btl");
    had_btl_ = btl != nullptr;
    saved_btl_ = btl ? btl : "";
    ::setenv("OMPI_MCA_btl", "self,vader,tcp", 1);
    SlurmTest::SetUp();
  }
  void TearDown() override {
    SlurmTest::TearDown();
    if (had_btl_) {
      ::setenv("OMPI_MCA_btl", saved_btl_.c_str(), 1);
    } else {
      ::unsetenv("OMPI_MCA_btl");
    }
  }
  bool had_btl_ = false;
  std::string saved_btl_;
  std::string rank_log(const std::string& job, int rank) const {
    return slurp(world() + "/mll-jobs/" + job + "/ranks/rank-" + std::to_string(rank) + ".log");
  }
};

TEST_F(TwoNodeSlurmTest, OneRankPerNodeGivesTheOneProcessStoreAndAWarningSignalReachesBoth) {
  build_world(100, 4);
  const std::string reference = keep_empty_and_label_reference();
  const std::string resources = "-N 2 --ntasks-per-node=1 -c 1 --gpus-per-task=0";

  // A plain run.
  std::string job = submit(resources, "label-mpi.sbatch");
  ASSERT_FALSE(job.empty());
  ASSERT_TRUE(wait_for([&] { return job_ended(job); }, 240))
      << show_job(job) << slurp(world() + "/mll-label-" + job + ".out") << cluster_->log_tail();
  const std::string shown = show_job(job);
  EXPECT_EQ(field(shown, "JobState"), "COMPLETED") << shown;
  EXPECT_EQ(field(shown, "NumNodes"), "2") << shown;
  EXPECT_EQ(field(shown, "NodeList"), "n[1-2]") << shown;
  EXPECT_NE(rank_log(job, 1).find("computed image rows"), std::string::npos) << rank_log(job, 1);
  expect_store_complete();
  expect_identical_stores(reference, store(), ids_);

  // USR1 to the batch shell on n1 mid-run: srun relays it to the rank on each node.
  fresh_store();
  const std::size_t files = store_files();
  job = submit(resources, "label-mpi.sbatch");
  ASSERT_FALSE(job.empty());
  const std::string launcher_log = world() + "/mll-jobs/" + job + "/launcher.log";
  ASSERT_TRUE(wait_for([&] { return store_files() > files + 2 || job_ended(job); }, 120) &&
              !job_ended(job))
      << show_job(job) << cluster_->log_tail();
  auto r = run_command(slurm("timeout 10 scancel --signal=USR1 --batch " + job), dir_);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(wait_for([&] { return field(show_job(job), "Restarts") == "1"; }, 90))
      << show_job(job) << slurp(launcher_log);
  EXPECT_NE(slurp(launcher_log).find("command exited with 75"), std::string::npos)
      << slurp(launcher_log);
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_NE(rank_log(job, rank).find("stop signal 10 received"), std::string::npos)
        << "rank " << rank << "\n"
        << rank_log(job, rank);
  }
  release_requeued(job);
  ASSERT_TRUE(wait_for([&] { return job_ended(job); }, 240))
      << show_job(job) << slurp(launcher_log) << cluster_->log_tail();
  EXPECT_EQ(field(show_job(job), "JobState"), "COMPLETED") << show_job(job);
  expect_store_complete();
  expect_identical_stores(reference, store(), ids_);

  // The rank on n2 killed mid-run: the rank on n1 says which rank, host and pid it lost.
  fresh_store();
  job = submit(resources, "label-mpi.sbatch");
  ASSERT_FALSE(job.empty());
  ASSERT_TRUE(wait_for([&] { return store_files() > files + 2 || job_ended(job); }, 120) &&
              !job_ended(job))
      << show_job(job) << cluster_->log_tail();
  pid_t victim = 0;
  for (const pid_t pid : cluster_->pids_on_node(1)) {
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    if (comm >> name && name == "mll") victim = pid;
  }
  ASSERT_NE(victim, 0);
  ::kill(victim, SIGKILL);
  ASSERT_TRUE(wait_for([&] { return job_ended(job); }, 120)) << show_job(job);
  const std::string lost = "rank 1 on host ";
  const std::string pid = "(pid " + std::to_string(victim) + ") ended before the job did";
  const std::string log0 = rank_log(job, 0);
  EXPECT_NE(log0.find(lost), std::string::npos) << log0;
  EXPECT_NE(log0.find(pid), std::string::npos) << log0;
  r = run_mll("store verify " + store(), dir_);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  job = submit(resources, "label-mpi.sbatch");  // the rerun resumes
  ASSERT_TRUE(wait_for([&] { return job_ended(job); }, 240)) << show_job(job);
  EXPECT_EQ(field(show_job(job), "JobState"), "COMPLETED") << show_job(job);
  expect_store_complete();
  expect_identical_stores(reference, store(), ids_);
}

}  // namespace
}  // namespace mll::test
