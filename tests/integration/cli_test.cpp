// The mll command line, run as a user runs it: exit codes, one-line errors, outputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "run_command.hpp"

namespace mll::test {
namespace {

// An error is one line on stderr starting with "mll: error:" (log lines may precede it).
void expect_one_line_error(const CommandResult& r, int code, const std::string& needle) {
  EXPECT_EQ(r.exit_code, code) << r.err;
  const auto start = r.err.rfind("mll: error: ");
  ASSERT_NE(start, std::string::npos) << r.err;
  EXPECT_TRUE(start == 0 || r.err[start - 1] == '\n') << r.err;
  EXPECT_EQ(r.err.find("mll: error: "), start) << "more than one error line: " << r.err;
  const std::string line = r.err.substr(start);
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << r.err;
  EXPECT_NE(line.find(needle), std::string::npos) << r.err;
}

TEST(Cli, HelpAndVersion) {
  ScratchDir dir;
  auto r = run_mll("--help", dir);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("graph build"), std::string::npos);
  r = run_mll("--version", dir);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("mll ", 0), 0u);
  r = run_mll("graph build --help", dir);
  EXPECT_EQ(r.exit_code, 0);
  // Every option with its default and unit.
  EXPECT_NE(r.out.find("--min-depth EDGES (=0)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--out ] FILE (=graph.h5)"), std::string::npos) << r.out;
  r = run_mll("", dir);
  EXPECT_EQ(r.exit_code, 64);
}

// Every command's --help shows an example line, and defaults print as typed: "(=0.7)", not
// the double's 17 digits ("(=0.69999999999999996)").
TEST(Cli, EveryCommandsHelpHasAnExampleAndDefaultsAsTyped) {
  ScratchDir dir;
  const auto list = run_mll("--help", dir);
  ASSERT_EQ(list.exit_code, 0);
  const std::regex long_fraction("\\(=-?[0-9]*\\.[0-9]{6,}\\)");
  const std::regex command_line("^  ([a-z]+(?: [a-z-]+)?)  ");
  int commands = 0;
  std::istringstream lines(list.out);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (!std::regex_search(line, m, command_line)) continue;
    const auto r = run_mll(m[1].str() + " --help", dir);
    ASSERT_EQ(r.exit_code, 0) << m[1] << ": " << r.err;
    EXPECT_FALSE(std::regex_search(r.out, long_fraction)) << m[1] << "\n" << r.out;
    // And an example line that runs this very command.
    EXPECT_TRUE(std::regex_search(r.out, std::regex("\nexample: .*mll " + m[1].str() + " ")))
        << r.out;
    ++commands;
  }
  EXPECT_GT(commands, 15) << list.out;
  const auto select = run_mll("select --help", dir);
  EXPECT_NE(select.out.find("--alpha A (=0.7)"), std::string::npos) << select.out;
  EXPECT_NE(select.out.find("--temperature T (=0.05)"), std::string::npos) << select.out;
}

TEST(Cli, UsageErrorsNameTheOption) {
  ScratchDir dir;
  expect_one_line_error(run_mll("graph build --bogus", dir), 64, "'--bogus'");
  expect_one_line_error(run_mll("graph build --out", dir), 64, "'--out'");
  expect_one_line_error(run_mll("graph build --min-depth deep", dir), 64, "--min-depth");
  expect_one_line_error(run_mll("frobnicate", dir), 64, "unknown command 'frobnicate'");
  expect_one_line_error(run_mll("graph", dir), 64, "missing subcommand");
  expect_one_line_error(run_mll("graph show", dir), 64, "node");
  expect_one_line_error(run_mll("graph build --log-level loud", dir), 64, "loud");
}

TEST(Cli, GraphBuildShowStats) {
  ScratchDir dir;
  const std::string graph = dir / "g.h5";
  auto r = run_mll("graph build --out " + graph, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("nodes            1860"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("roots            1 entity.n.01"), std::string::npos) << r.out;
  r = run_mll("graph show n02084071 --graph " + graph, dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("dog.n.01"), std::string::npos);
  EXPECT_NE(r.out.find("canine.n.02"), std::string::npos);
  EXPECT_NE(r.out.find("domestic_animal.n.01"), std::string::npos);
  EXPECT_NE(r.out.find("118 seed leaves below"), std::string::npos) << r.out;
  r = run_mll("graph show 'golden retriever' -g " + graph, dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("golden_retriever.n.01"), std::string::npos);
  expect_one_line_error(run_mll("graph show n99999999 -g " + graph, dir), 64, "n99999999");
  r = run_mll("graph stats -g " + graph, dir);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("depth histogram"), std::string::npos);
}

TEST(Cli, ExistingOutputIsNotTouchedWithoutForce) {
  ScratchDir dir;
  const std::string graph = dir / "g.h5";
  std::ofstream(graph) << "precious";
  expect_one_line_error(run_mll("graph build --out " + graph, dir), 64, "--force");
  EXPECT_EQ(slurp(graph), "precious");
  EXPECT_EQ(run_mll("graph build --force --out " + graph, dir).exit_code, 0);
  EXPECT_NE(slurp(graph), "precious");
}

TEST(Cli, BadInputsAreOneLineErrors) {
  ScratchDir dir;
  std::ofstream(dir / "bad.txt") << "n02084071\nn0208407x\n";
  expect_one_line_error(
      run_mll("graph build --seeds " + (dir / "bad.txt") + " -o " + (dir / "g.h5"), dir), 65,
      "bad.txt:2: malformed wnid 'n0208407x'");
  std::ofstream(dir / "verb.txt") << "v01168468\n";
  expect_one_line_error(
      run_mll("graph build --seeds " + (dir / "verb.txt") + " -o " + (dir / "g.h5"), dir), 65,
      "is not a noun");
  std::ofstream(dir / "unknown.txt") << "n00000042\n";
  expect_one_line_error(
      run_mll("graph build --seeds " + (dir / "unknown.txt") + " -o " + (dir / "g.h5"), dir), 65,
      "unknown wnid 'n00000042'");
  expect_one_line_error(
      run_mll("graph build --wordnet " + (dir / "nowhere") + " -o " + (dir / "g.h5"), dir), 65,
      "wordnet-base");
  expect_one_line_error(run_mll("graph build -o /proc/mll-test.h5", dir), 64, "/proc/mll-test.h5");
  expect_one_line_error(run_mll("graph build -o " + (dir / "no/such/dir/g.h5"), dir), 64,
                        "does not exist");
  std::ofstream(dir / "text.h5") << "not hdf5";
  expect_one_line_error(run_mll("graph stats -g " + (dir / "text.h5"), dir), 65,
                        "not an HDF5 file");
  expect_one_line_error(run_mll("graph stats -g " + (dir / "none.h5"), dir), 65, "not found");
  // Nothing was left behind by the failed runs.
  EXPECT_FALSE(std::filesystem::exists(dir / "g.h5"));
}

TEST(Cli, ConfigFileSectionsAndCommandLinePrecedence) {
  ScratchDir dir;
  std::ofstream(dir / "mll.ini") << "log-level = warn\n[graph.build]\ncaption-style = definition\n"
                                 << "out = " << (dir / "from-config.h5") << "\n"
                                 << "[graph.stats]\ngraph = elsewhere.h5\n";
  auto r = run_mll("graph build -c " + (dir / "mll.ini"), dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir / "from-config.h5"));
  EXPECT_NE(r.out.find("caption style    definition"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find("info"), std::string::npos) << "log-level from the file applies";
  r = run_mll("graph build -c " + (dir / "mll.ini") + " --out " + (dir / "cli.h5") +
                  " --caption-style lemma-which-is",
              dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir / "cli.h5"));
  EXPECT_NE(r.out.find("caption style    lemma-which-is"), std::string::npos);
  std::ofstream(dir / "bad.ini") << "[graph.build]\nfancy = 1\n";
  expect_one_line_error(run_mll("graph build -c " + (dir / "bad.ini"), dir), 64,
                        "unknown option 'fancy'");
  std::ofstream(dir / "bad2.ini") << "[grpah.build]\nout = x.h5\n";
  expect_one_line_error(run_mll("graph build -c " + (dir / "bad2.ini"), dir), 64,
                        "unknown section [grpah.build]");
  expect_one_line_error(run_mll("graph build -c " + (dir / "missing.ini"), dir), 65, "missing.ini");
}

TEST(Cli, GraphIsReadableWithH5py) {
  if (std::system("/usr/bin/python3 -c 'import h5py' 2>/dev/null") != 0) {
    GTEST_SKIP() << "python3-h5py is not installed";
  }
  ScratchDir dir;
  ASSERT_EQ(run_mll("graph build -o " + (dir / "g.h5"), dir).exit_code, 0);
  std::ofstream(dir / "check.py")
      << "import h5py, sys\n"
         "g = h5py.File(sys.argv[1], 'r')['graph']\n"
         "w = [x.decode() for x in g['wnid'][:]]\n"
         "n = [x.decode() for x in g['name'][:]]\n"
         "i = w.index('n02084071')\n"
         "assert n[i] == 'dog.n.01'\n"
         "e = g['edges'][:]\n"
         "parents = sorted(n[p] for c, p in e if c == i)\n"
         "assert parents == ['canine.n.02', 'domestic_animal.n.01'], parents\n"
         "assert g.attrs['node_count'] == len(w) == 1860\n"
         "assert g['is_seed'][:].sum() == 1000\n";
  const auto r = run_command("/usr/bin/python3 " + (dir / "check.py") + " " + (dir / "g.h5"), dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

// The markdown table of a demo or run output: from its header line to the average row.
std::string table_of(const std::string& out) {
  const auto begin = out.find("| task |");
  const auto end = out.find("| **average** |", begin);
  if (begin == std::string::npos || end == std::string::npos) return "";
  return out.substr(begin, out.find('\n', end) - begin);
}

// mll run over the demo's tasks, on the demo's store and zoo, writes the demo's table.
TEST(Cli, DemoRunsAndRunOverItsTasksWritesTheSameTable) {
  ScratchDir dir;
  auto r = run_mll("demo --out " + (dir / "demo"), dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(dir / "demo/graph.h5"));
  EXPECT_NE(r.out.find("nodes            1860"), std::string::npos);
  const std::string demo_table = table_of(r.out);
  ASSERT_FALSE(demo_table.empty()) << r.out;
  EXPECT_NE(slurp(dir / "demo/summary.html").find("id=\"summary-table\""), std::string::npos);

  r = run_mll("run --store " + (dir / "demo/store.h5") + " --zoo " + (dir / "demo/world/zoo.json") +
                  " --task " + (dir / "demo/world/tasks") + " --k 1,3 --out " + (dir / "run"),
              dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("over 5 tasks"), std::string::npos) << r.out;
  EXPECT_EQ(table_of(r.out), demo_table);
  const std::string csv = slurp(dir / "demo/summary.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7) << csv;  // header, 5 tasks, average
  EXPECT_EQ(slurp(dir / "run/summary.csv"), csv);
}

}  // namespace
}  // namespace mll::test
