#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <thread>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <vector>

#include "mll/core/cpus.hpp"
#include "mll/core/data.hpp"
#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/core/hash.hpp"
#include "mll/core/linalg.hpp"
#include "mll/core/log.hpp"
#include "mll/core/model_id.hpp"
#include "test_paths.hpp"

namespace mll {
namespace {

TEST(ModelId, OneRuleWideEnoughForOpenClipIds) {
  for (const char* id : {"ViT-B-32", "ViT-B-32:laion2b_s34b_b79k", "coca_ViT-B-32:mscoco_finetuned",
                         "hf-hub:timm--vit_base", "m@2+x=y", "a%41", "x.json"}) {
    EXPECT_EQ(model_id_problem(id), "") << id;
  }
  EXPECT_EQ(model_id_problem(""), "is empty");
  EXPECT_EQ(model_id_problem(".git"), "starts with '.'");
  EXPECT_EQ(model_id_problem(".."), "starts with '.'");
  EXPECT_EQ(model_id_problem("a/b"), "contains '/'");
  EXPECT_EQ(model_id_problem("a\\b"), "contains '\\'");
  EXPECT_EQ(model_id_problem("a,b"), "contains ',' (ids are comma-separated on command lines)");
  for (const char* id : {"a b", "a\tb", "caf\xc3\xa9", "a\x7f"}) {
    EXPECT_EQ(model_id_problem(id), "contains a space, a control character or a non-ASCII byte")
        << id;
  }
  EXPECT_EQ(model_id_problem(std::string(200, 'a')), "");
  EXPECT_EQ(model_id_problem(std::string(201, 'a')), "is longer than 200 bytes");
  // 100 colons fit as an id but not as a file name (300 bytes escaped).
  EXPECT_THAT(model_id_problem(std::string(100, ':')), ::testing::HasSubstr("has a file name"));
  EXPECT_THROW(check_model_id("a,b"), UsageError);
  try {
    check_model_id("a b");
    ADD_FAILURE() << "accepted";
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("invalid model id 'a b': contains a space"));
  }
}

TEST(ModelId, FileStemsAreEscapedOneToOneAndOnlyTheCanonicalSpellingMapsBack) {
  EXPECT_EQ(model_file_stem("ViT-B-32_v1.2"), "ViT-B-32_v1.2");
  EXPECT_EQ(model_file_stem("ViT-B-32:laion2b_s34b_b79k"), "ViT-B-32%3Alaion2b_s34b_b79k");
  EXPECT_EQ(model_file_stem("a%41"), "a%2541");  // '%' itself is escaped: no two ids collide
  EXPECT_EQ(model_file_stem("a+b=c"), "a%2Bb%3Dc");
  for (const char* id : {"ViT-B-32", "ViT-B-32:laion2b_s34b_b79k", "a%41", "x~!@#$^&*()"}) {
    EXPECT_EQ(model_id_from_file_stem(model_file_stem(id)), std::optional<std::string>(id)) << id;
  }
  EXPECT_EQ(model_id_from_file_stem("ViT-B-32%3alaion"), std::nullopt);  // lower-case hex
  EXPECT_EQ(model_id_from_file_stem("a%4"), std::nullopt);               // cut short
  EXPECT_EQ(model_id_from_file_stem("a%41"), std::nullopt);              // 'A' needs no escape
  EXPECT_EQ(model_id_from_file_stem("a%2Cb"), std::nullopt);  // ',' is not allowed in ids
  EXPECT_EQ(model_id_from_file_stem("a:b"), std::nullopt);    // a raw ':' is not a stem
  EXPECT_EQ(model_id_from_file_stem(""), std::nullopt);
}

TEST(Error, TypedErrorsCarryTheirExitCodes) {
  EXPECT_EQ(exit_code_of(UsageError("x")), ExitCode::kUsage);
  EXPECT_EQ(exit_code_of(DataError("x")), ExitCode::kDataError);
  EXPECT_EQ(exit_code_of(IoError("x")), ExitCode::kIoError);
  EXPECT_EQ(exit_code_of(InternalError("x")), ExitCode::kInternal);
  EXPECT_EQ(exit_code_of(Interrupted("x")), ExitCode::kInterrupted);
  EXPECT_EQ(exit_code_of(std::runtime_error("x")), ExitCode::kInternal);
  EXPECT_EQ(static_cast<int>(ExitCode::kUsage), 64);
  EXPECT_EQ(static_cast<int>(ExitCode::kDataError), 65);
  EXPECT_EQ(static_cast<int>(ExitCode::kInternal), 70);
  EXPECT_EQ(static_cast<int>(ExitCode::kIoError), 74);
  EXPECT_EQ(static_cast<int>(ExitCode::kInterrupted), 75);
}

TEST(Error, ThrowMacroRecordsLocationAndMessage) {
  try {
    MLL_THROW(DataError, "file.txt:", 12, ": bad wnid '", "x", "'");
    FAIL() << "no exception";
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "file.txt:12: bad wnid 'x'");
    EXPECT_GT(e.line(), 0);
    EXPECT_NE(std::string(e.file()).find("core_test.cpp"), std::string::npos);
  }
}

TEST(Error, ContextIsPrefixed) {
  DataError e("bad value");
  e.add_context("reading store.h5");
  EXPECT_STREQ(e.what(), "reading store.h5: bad value");
}

TEST(Error, CheckThrowsInternalErrorOnlyWhenFalse) {
  EXPECT_NO_THROW(MLL_CHECK(1 + 1 == 2));
  EXPECT_THROW(MLL_CHECK(1 + 1 == 3, "arithmetic"), InternalError);
}

TEST(Hash, Sha256KnownVectors) {
  // FIPS 180-2 test vectors.
  EXPECT_EQ(Sha256().update("abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256().hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Hash, FieldsAreFramed) {
  EXPECT_NE(Sha256().update_field("ab").update_field("c").hex(),
            Sha256().update_field("a").update_field("bc").hex());
}

TEST(Hash, FileHashEqualsInMemoryHash) {
  test::ScratchDir dir;
  const std::string path = dir / "f.bin";
  std::string content(3'000'000, 'x');
  content[1234] = 'y';
  std::ofstream(path, std::ios::binary) << content;
  EXPECT_EQ(sha256_file(path), Sha256().update(content).hex());
  EXPECT_THROW(sha256_file(dir / "missing"), IoError);
}

// XXH3-64 (the image cache's crop checksum): the reference value of the empty input (xxHash's
// own test suite), and any one flipped bit of a crop-sized buffer changes it.
TEST(Hash, ChecksumIsXxh3AndSeesEveryBit) {
  EXPECT_EQ(checksum64("", 0), 0x2D06800538D394C2ULL);
  std::vector<unsigned char> crop(224 * 224 * 3);
  for (std::size_t i = 0; i < crop.size(); ++i) crop[i] = static_cast<unsigned char>(i * 7 + 3);
  const std::uint64_t whole = checksum64(crop.data(), crop.size());
  EXPECT_EQ(checksum64(crop.data(), crop.size()), whole);
  for (const std::size_t at : {std::size_t{0}, crop.size() / 2, crop.size() - 1}) {
    for (int bit = 0; bit < 8; ++bit) {
      crop[at] ^= static_cast<unsigned char>(1 << bit);
      EXPECT_NE(checksum64(crop.data(), crop.size()), whole) << at << " " << bit;
      crop[at] ^= static_cast<unsigned char>(1 << bit);
    }
  }
}

TEST(Fs, OutputChecks) {
  test::ScratchDir dir;
  EXPECT_NO_THROW(fs::check_output_path(dir / "new.h5", false));
  std::ofstream(dir / "old.h5") << "data";
  EXPECT_THROW(fs::check_output_path(dir / "old.h5", false), UsageError);
  EXPECT_NO_THROW(fs::check_output_path(dir / "old.h5", true));
  EXPECT_THROW(fs::check_output_path(dir / "nodir/x.h5", true), UsageError);
  EXPECT_THROW(fs::check_output_path(dir.path(), true), UsageError);
  EXPECT_THROW(fs::check_output_path("/proc/x.h5", true), UsageError);
  // The probe file used for the check is gone.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
}

TEST(Fs, AtomicOutputReplacesOnlyOnCommit) {
  test::ScratchDir dir;
  const std::string path = dir / "out.txt";
  std::ofstream(path) << "old";
  {
    fs::AtomicOutput output(path);
    std::ofstream(output.temp_path()) << "half-written";
    // No commit: an exception or kill here must leave the old file.
  }
  EXPECT_EQ(fs::read_file(path), "old");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
  {
    fs::AtomicOutput output(path);
    std::ofstream(output.temp_path()) << "new";
    output.commit();
  }
  EXPECT_EQ(fs::read_file(path), "new");
}

TEST(Fs, ReadFileErrors) {
  test::ScratchDir dir;
  EXPECT_THROW(fs::read_file(dir / "missing"), DataError);
  EXPECT_THROW(fs::require_input_file(dir.path(), "seed file"), DataError);
}

TEST(Log, ParseLevel) {
  EXPECT_EQ(log::parse_level("debug"), log::Level::kDebug);
  EXPECT_EQ(log::parse_level("off"), log::Level::kOff);
  EXPECT_THROW(log::parse_level("loud"), UsageError);
}

TEST(Log, FileSinkReceivesMessages) {
  test::ScratchDir dir;
  const std::string path = dir / "rank.log";
  log::set_file(path);
  log::set_rank(3);
  log::warn("disk almost full: ", 97, "%");
  log::set_file("");
  log::set_rank(-1);
  const std::string text = fs::read_file(path);
  EXPECT_NE(text.find("[rank 3]"), std::string::npos);
  EXPECT_NE(text.find("disk almost full: 97%"), std::string::npos);
  EXPECT_THROW(log::set_file("/nonexistent-dir/x.log"), IoError);
}

TEST(Data, ShippedFilesAreFound) {
  EXPECT_TRUE(std::filesystem::exists(data_file("imagenet/imagenet1k_wnids.txt")));
  EXPECT_THROW(data_file("no/such/file"), DataError);
}

}  // namespace
}  // namespace mll

namespace mll {
namespace {

// The CPU budget never exceeds the machine, honours SLURM_CPUS_PER_TASK, and ignores bad values.
TEST(CoreCpus, BudgetIsWithinTheMachineAndFollowsSlurm) {
  const char* saved = std::getenv("SLURM_CPUS_PER_TASK");
  const std::string previous = saved ? saved : "";
  unsetenv("SLURM_CPUS_PER_TASK");
  const CpuBudget free_budget = usable_cpus();
  EXPECT_GE(free_budget.cpus, 1);
  EXPECT_LE(free_budget.cpus, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  setenv("SLURM_CPUS_PER_TASK", "1", 1);
  EXPECT_EQ(usable_cpus().cpus, 1);
  if (free_budget.cpus > 1) {
    EXPECT_EQ(usable_cpus().source, "SLURM_CPUS_PER_TASK");
  }
  setenv("SLURM_CPUS_PER_TASK", "lots", 1);
  EXPECT_EQ(usable_cpus().cpus, free_budget.cpus);
  setenv("SLURM_CPUS_PER_TASK", "100000", 1);  // more than allowed: the mask wins
  EXPECT_EQ(usable_cpus().cpus, free_budget.cpus);
  if (saved) {
    setenv("SLURM_CPUS_PER_TASK", previous.c_str(), 1);
  } else {
    unsetenv("SLURM_CPUS_PER_TASK");
  }
  EXPECT_EQ(usable_cpu_count(), usable_cpus().cpus);
}

// Available memory is known on Linux, at most the machine's, and capped by Slurm's allocation.
TEST(CoreMemory, AvailableMemoryIsWithinTheMachineAndFollowsSlurm) {
  for (const char* name : {"SLURM_MEM_PER_NODE", "SLURM_MEM_PER_CPU"}) unsetenv(name);
  const MemoryAvailable free_memory = available_memory();
  ASSERT_GT(free_memory.bytes, 0);
  const std::int64_t physical =
      static_cast<std::int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  EXPECT_LE(free_memory.bytes, physical);
  setenv("SLURM_MEM_PER_NODE", "100", 1);  // megabytes
  EXPECT_EQ(available_memory().bytes, 100LL << 20);
  EXPECT_EQ(available_memory().source, "SLURM_MEM_PER_NODE");
  unsetenv("SLURM_MEM_PER_NODE");
  setenv("SLURM_MEM_PER_CPU", "10", 1);
  EXPECT_EQ(available_memory().bytes, (10LL << 20) * usable_cpu_count());
  setenv("SLURM_MEM_PER_CPU", "plenty", 1);  // not a number: ignored
  EXPECT_EQ(available_memory().source, free_memory.source);
  unsetenv("SLURM_MEM_PER_CPU");
}

// Selection and the summary labels split their products into row blocks of any size (down to
// one row), and BLAS may round a row differently in blocks of other shapes: the argmax must not
// move. Near-ties are made on purpose: columns that are copies of others (exact ties: the first
// wins) and copies moved by about one float rounding step (the exact product decides).
TEST(LinAlg, ArgmaxOfRowBlocksOfAnySizeIsTheWholesAndTheExactOne) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  for (const std::int64_t k : {8, 64, 512}) {
    for (const std::int64_t n : {1, 5, 130}) {
      const std::int64_t m = 300;
      std::vector<float> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(n * k));
      for (auto& x : a) x = normal(rng);
      for (auto& x : b) x = normal(rng);
      for (std::int64_t j = 1; j < n; j += 2) {
        for (std::int64_t t = 0; t < k; ++t) {
          float& x = b[static_cast<std::size_t>(j * k + t)];
          x = b[static_cast<std::size_t>((j - 1) * k + t)];
          if (j % 4 == 3 && t == j % k) x = std::nextafter(x, 10.0f);  // 1 ulp: a near-tie
        }
      }
      std::vector<float> whole(static_cast<std::size_t>(m * n)), part(whole.size());
      std::vector<std::int32_t> whole_arg(static_cast<std::size_t>(m)),
          blocked_arg(whole_arg.size(), -1);
      linalg::matmul_nt(a.data(), m, b.data(), n, k, whole.data());
      linalg::first_argmax_nt(a.data(), m, b.data(), n, k, whole.data(), whole_arg.data());
      const std::int64_t sizes[] = {1, 2, 3, 4, 7, 16, 1, 50, 2, 100};
      std::int64_t row = 0;
      for (std::size_t i = 0; row < m; ++i) {
        const std::int64_t rows = std::min(sizes[i % 10], m - row);
        linalg::matmul_nt(a.data() + row * k, rows, b.data(), n, k, part.data());
        linalg::first_argmax_nt(a.data() + row * k, rows, b.data(), n, k, part.data(),
                                blocked_arg.data() + row);
        row += rows;
      }
      EXPECT_EQ(blocked_arg, whole_arg) << "k " << k << " n " << n;
      // The exact argmax (long double: each product of two floats and their sums of up to 512
      // terms of these magnitudes are exact or far finer than the 1-ulp gaps).
      for (std::int64_t i = 0; i < m; ++i) {
        std::int32_t best = 0;
        long double best_value = 0;
        for (std::int64_t j = 0; j < n; ++j) {
          long double value = 0;
          for (std::int64_t t = 0; t < k; ++t) {
            value += static_cast<long double>(a[static_cast<std::size_t>(i * k + t)]) *
                     b[static_cast<std::size_t>(j * k + t)];
          }
          if (j == 0 || value > best_value) {
            best_value = value;
            best = static_cast<std::int32_t>(j);
          }
        }
        ASSERT_EQ(whole_arg[static_cast<std::size_t>(i)], best)
            << "k " << k << " n " << n << " row " << i;
      }
    }
  }
  EXPECT_THROW(linalg::matmul_nt(nullptr, -1, nullptr, 1, 1, nullptr), InternalError);
}

// A row without a finite entry: the first maximum as std::max_element finds it (never an index
// out of range).
TEST(LinAlg, ArgmaxOfRowsWithoutFiniteEntriesIsInRange) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> a = {1.0f, 0.0f}, b = {1.0f, 0.0f, 0.0f, 1.0f};
  const std::vector<float> c = {nan, nan};
  std::int32_t out = -1;
  linalg::first_argmax_nt(a.data(), 1, b.data(), 2, 2, c.data(), &out);
  EXPECT_EQ(out, 0);
}

}  // namespace
}  // namespace mll
