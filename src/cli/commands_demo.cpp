// mll demo: the built-in default, end to end on a synthetic world over the real WordNet graph.
//
// Each step runs this same mll binary as a child process, exactly as a user would type it (and
// labeling under mpirun on local ranks), so the demo exercises the real command line; the logs
// of every step are kept in <out>/logs.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "command.hpp"
#include "graph_summary.hpp"
#include "mll/core/data.hpp"
#include "mll/core/error.hpp"
#include "mll/core/log.hpp"
#include "mll/graph/graph.hpp"
#include "mll/reuse/summary.hpp"

namespace mll::cli {
namespace {

namespace stdfs = std::filesystem;

std::string self_path() {
  std::error_code ec;
  const auto path = stdfs::read_symlink("/proc/self/exe", ec);
  if (ec) MLL_THROW(InternalError, "cannot find the mll executable: ", ec.message());
  return path.string();
}

std::string quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class Steps {
 public:
  explicit Steps(std::string out) : out_(std::move(out)), mll_(quote(self_path())) {
    stdfs::create_directories(out_ + "/logs");
  }
  const std::string& mll() const { return mll_; }

  // Runs one step; its output goes to logs/<name>.log. Throws naming the step and the log.
  void run(const std::string& name, const std::string& command) {
    const std::string log_path = out_ + "/logs/" + name + ".log";
    const auto start = std::chrono::steady_clock::now();
    log::info("demo: ", name);
    const int status = std::system((command + " >" + quote(log_path) + " 2>&1").c_str());
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    timings_.emplace_back(name, seconds);
    if (status != 0) {
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      throw Error(
          code == 75 ? ExitCode::kInterrupted : ExitCode::kDataError,
          cat("demo step '", name, "' failed with exit code ", code, " (see ", log_path, ")"),
          __FILE__, __LINE__);
    }
  }
  double seconds(const std::string& prefix) const {
    double total = 0;
    for (const auto& [name, s] : timings_) total += name.rfind(prefix, 0) == 0 ? s : 0.0;
    return total;
  }

 private:
  std::string out_;
  std::string mll_;
  std::vector<std::pair<std::string, double>> timings_;
};

// MLL at k = 1 with every baseline, and at k = 3 alone.
const std::vector<int> kDemoKs = {1, 3};

void demo_options(po::options_description& d, po::positional_options_description&) {
  d.add_options()("out,o", po::value<std::string>()->default_value("mll-demo")->value_name("DIR"),
                  "directory for everything the demo writes (its previous contents are replaced)")(
      "seed", po::value<std::uint64_t>()->default_value(0)->value_name("S"),
      "synthetic world seed")("models", po::value<int>()->default_value(12)->value_name("N"),
                              "models in the zoo")(
      "ranks", po::value<int>()->default_value(2)->value_name("N"),
      "MPI ranks for labeling (mpirun on this machine; 1: no MPI)")(
      "wordnet",
      po::value<std::string>()->default_value(graph::WordNet::default_dir())->value_name("DIR"),
      "WordNet 3.0 database directory");
}

int demo_run(const po::variables_map& vm, distributed::Session& session) {
  const std::string out = vm["out"].as<std::string>();
  const int ranks = vm["ranks"].as<int>();
  if (ranks < 1) MLL_THROW(UsageError, "--ranks must be >= 1");
  if (vm["models"].as<int>() < 2) MLL_THROW(UsageError, "--models must be >= 2");
  std::error_code ec;
  stdfs::create_directories(out, ec);
  if (ec) MLL_THROW(UsageError, out, ": cannot create demo directory: ", ec.message());
  const auto start = std::chrono::steady_clock::now();

  // 1. The semantic graph of the ImageNet-1k classes.
  const auto wordnet = graph::WordNet::load(vm["wordnet"].as<std::string>());
  const auto seeds = graph::read_seeds(data_file("imagenet/imagenet1k_wnids.txt"), wordnet);
  const auto graph = graph::build_graph(wordnet, seeds, graph::BuildOptions{});
  const std::string graph_path = out + "/graph.h5";
  graph::write_graph_file(graph, graph_path, /*force=*/true);
  print_graph_summary(std::cout, graph, graph_path);

  Steps steps(out);
  const std::string& mll = steps.mll();
  const std::string world = out + "/world", store = out + "/store.h5";
  // 2. A synthetic world on that graph: images, models, tasks, and the hidden ground truth.
  steps.run("synth", mll + " synth --force --graph " + quote(graph_path) + " --out " +
                         quote(world) + " --seed " +
                         std::to_string(vm["seed"].as<std::uint64_t>()) + " --models " +
                         std::to_string(vm["models"].as<int>()));
  // 3. Probe set and label store; 4. labeling on local MPI ranks.
  steps.run("probe", mll + " probe build --force --graph " + quote(graph_path) + " --images " +
                         quote(world + "/images") + " --store " + quote(store));
  std::string launcher;
  if (ranks > 1) {
    if (std::system("command -v mpirun >/dev/null 2>&1") != 0) {
      MLL_THROW(UsageError, "mpirun not found (install openmpi-bin) or pass --ranks 1");
    }
    launcher = "mpirun --oversubscribe " +
               std::string(::geteuid() == 0 ? "--allow-run-as-root " : "") + "-np " +
               std::to_string(ranks) + " ";
  }
  steps.run("label", launcher + mll + " label --no-progress --store " + quote(store) + " --zoo " +
                         quote(world + "/zoo.json"));

  // 5. Select and reuse for every task, k = 1 (with every baseline) and k = 3.
  std::vector<std::string> tasks;
  for (const auto& entry : stdfs::directory_iterator(world + "/tasks")) {
    if (entry.path().extension() == ".json") tasks.push_back(entry.path().string());
  }
  std::sort(tasks.begin(), tasks.end());
  std::vector<reuse::TaskReports> results;
  for (const auto& task : tasks) {
    const std::string name = stdfs::path(task).stem().string();
    const std::string dir = out + "/tasks/" + name;
    stdfs::create_directories(dir);
    const std::string common = " --store " + quote(store) + " --task " + quote(task) + " --zoo " +
                               quote(world + "/zoo.json");
    reuse::TaskReports result;
    result.name = name;
    for (int k : kDemoKs) {
      const std::string tag = name + "-k" + std::to_string(k);
      const std::string selection = dir + "/selection-k" + std::to_string(k) + ".json";
      steps.run("select-" + tag, mll + " select" + common + " --k " + std::to_string(k) +
                                     " --out " + quote(selection));
      const std::string reuse_dir = dir + "/k" + std::to_string(k);
      steps.run("reuse-" + tag, mll + " reuse" + common + " --selection " + quote(selection) +
                                    " --out " + quote(reuse_dir) +
                                    (k != kDemoKs.front() ? " --no-baselines" : ""));
      result.reports.push_back(reuse_dir + "/report.json");
    }
    result.html = dir + "/k" + std::to_string(kDemoKs.front()) + "/report.html";
    results.push_back(result);
  }

  // The table: top-1 accuracy (%) per task and on average; the same table `mll run` writes.
  const auto table = reuse::summarize(kDemoKs, results);
  reuse::write_summary(table, "mll demo: top-1 accuracy on the synthetic tasks", out);
  std::cout << "\nTop-1 accuracy (%) on the synthetic tasks (" << vm["models"].as<int>()
            << " models, world seed " << vm["seed"].as<std::uint64_t>() << "):\n\n"
            << reuse::summary_markdown(table);
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "\nRandom is the mean over 5 seeds; Oracle (best single model on the test labels)"
               " is an upper reference.\n"
            << "Times: synth " << std::fixed << std::setprecision(0) << steps.seconds("synth")
            << " s, label " << steps.seconds("label") << " s on " << ranks
            << " rank(s), select+reuse " << steps.seconds("select") + steps.seconds("reuse")
            << " s, total " << total << " s.\n"
            << "Reports: " << (results.empty() ? std::string("-") : results.front().html)
            << (results.size() > 1 ? " (and one per task under " + out + "/tasks)" : "") << "\n"
            << "Summary: " << out << "/summary.html (and summary.csv, summary.json)\n"
            << "Store: " << store << " (mll inspect " << store << ")\n";
  return 0;
}

}  // namespace

void add_demo_commands(std::vector<Command>& commands) {
  commands.push_back({"demo",
                      "the built-in default: synthetic world, labeling on local MPI ranks, "
                      "selection and reuse for every task, one table",
                      "[--out DIR] [--seed S] [--ranks 2]", demo_options, demo_run});
  commands.back().example = "mll demo --out demo-out --ranks 3";
}

}  // namespace mll::cli
