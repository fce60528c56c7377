// Paths tests need: the source tree (shared data, test data), the build tree (the mll binary)
// and a fresh scratch directory per test.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <unistd.h>

namespace mll::test {

inline std::string source_dir() {
  const char* dir = std::getenv("MLL_SOURCE_DIR");
  return dir ? dir : MLL_TEST_SOURCE_DIR;
}

inline std::string binary_dir() {
  const char* dir = std::getenv("MLL_BINARY_DIR");
  return dir ? dir : MLL_TEST_BINARY_DIR;
}

// The mll executable built alongside the tests.
inline std::string mll_exe() { return binary_dir() + "/src/app/mll"; }

// A scratch directory unique to the running test, removed at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "." + info->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    path_ = std::filesystem::temp_directory_path() /
            ("mll-test-" + name + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    if (std::getenv("MLL_KEEP_TEST_DIRS") == nullptr) std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  std::string path() const { return path_.string(); }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace mll::test
