#include "mll/core/data.hpp"

#include <cstdlib>
#include <filesystem>

#include "mll/core/error.hpp"

#ifndef MLL_DATA_DIR_BUILD
#error "MLL_DATA_DIR_BUILD must be defined by the build"
#endif
#ifndef MLL_DATA_DIR_INSTALL
#error "MLL_DATA_DIR_INSTALL must be defined by the build"
#endif

namespace mll {

std::string data_dir() {
  if (const char* dir = std::getenv("MLL_DATA_DIR"); dir != nullptr && *dir != '\0') return dir;
  std::error_code ec;
  if (std::filesystem::is_directory(MLL_DATA_DIR_BUILD, ec)) return MLL_DATA_DIR_BUILD;
  return MLL_DATA_DIR_INSTALL;
}

std::string data_file(const std::string& relative) {
  const std::string path = (std::filesystem::path(data_dir()) / relative).string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    MLL_THROW(DataError, path, ": mll data file not found (set MLL_DATA_DIR to the directory ",
              "holding mll's data/)");
  }
  return path;
}

}  // namespace mll
