#include "mll/core/fs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "mll/core/error.hpp"

namespace mll::fs {
namespace stdfs = std::filesystem;

namespace {

void fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) MLL_THROW(IoError, path, ": cannot open to sync: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) MLL_THROW(IoError, path, ": fsync failed: ", std::strerror(saved));
}

std::string parent_or_dot(const std::string& path) {
  const stdfs::path parent = stdfs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

}  // namespace

void check_output_path(const std::string& path, bool force) {
  if (path.empty()) MLL_THROW(UsageError, "empty output path");
  std::error_code ec;
  const auto status = stdfs::status(path, ec);
  if (stdfs::is_directory(status)) {
    MLL_THROW(UsageError, path, ": output path is a directory");
  }
  if (stdfs::exists(status) && !force) {
    MLL_THROW(UsageError, path, ": output exists (pass --force to overwrite it)");
  }
  const std::string dir = parent_or_dot(path);
  if (!stdfs::is_directory(dir, ec)) {
    MLL_THROW(UsageError, path, ": cannot write output: directory '", dir, "' does not exist");
  }
  // access() says yes to root even on read-only file systems, so creating a probe file is the
  // only reliable test; it is done now, before any expensive work starts.
  const std::string probe = path + ".probe." + std::to_string(::getpid());
  const int fd = ::open(probe.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
  if (fd < 0) {
    MLL_THROW(UsageError, path, ": cannot write output in '", dir, "': ", std::strerror(errno));
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

void require_input_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  const auto status = stdfs::status(path, ec);
  if (!stdfs::exists(status)) MLL_THROW(DataError, path, ": ", what, " not found");
  if (!stdfs::is_regular_file(status)) MLL_THROW(DataError, path, ": ", what, " is not a file");
}

std::string read_file(const std::string& path) {
  require_input_file(path, "file");
  std::ifstream in(path, std::ios::binary);
  if (!in) MLL_THROW(IoError, path, ": cannot open for reading: ", std::strerror(errno));
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) MLL_THROW(IoError, path, ": read error");
  return out.str();
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

AtomicOutput::AtomicOutput(std::string path, Temp temp)
    : path_(std::move(path)),
      temp_path_(path_ + ".tmp." + (temp == Temp::kHostAndPid ? host_name() + "." : "") +
                 std::to_string(::getpid())) {}

AtomicOutput::~AtomicOutput() {
  if (!committed_) {
    std::error_code ec;
    stdfs::remove(temp_path_, ec);  // best effort; never throw from a destructor
  }
}

void AtomicOutput::commit() {
  MLL_CHECK(!committed_, "commit() called twice for ", path_);
  fsync_path(temp_path_, O_RDONLY);
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    MLL_THROW(IoError, path_, ": cannot rename from ", temp_path_, ": ", std::strerror(errno));
  }
  committed_ = true;
  fsync_path(parent_or_dot(path_), O_RDONLY | O_DIRECTORY);
}

}  // namespace mll::fs
