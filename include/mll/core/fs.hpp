// File-system helpers shared by every command that reads inputs or writes outputs.
//
// Outputs are always written to a temporary name in the destination directory and renamed into
// place once complete (rename is atomic on POSIX), so a failure or kill never leaves a half-written
// file under the real name and never damages an existing one. Nothing here is collective.
#pragma once

#include <string>

namespace mll::fs {

// Throws UsageError when `path` cannot be created: its directory is missing or not writable,
// it names a directory, or it exists and `force` is false.
void check_output_path(const std::string& path, bool force);

// Throws DataError naming `what` when `path` does not exist or is not a regular file.
void require_input_file(const std::string& path, const std::string& what);

// Reads a whole file. Throws DataError when it is missing, IoError when reading fails.
std::string read_file(const std::string& path);

// This machine's host name ("localhost" when it cannot be read). Does not throw.
std::string host_name();

// Writes to "<path>.tmp.<pid>" and renames it to `path` on commit(); the destructor removes the
// temporary file if commit() was never reached. In a folder that processes on several machines
// write (a cache on a shared file system), Temp::kHostAndPid names it "<path>.tmp.<host>.<pid>":
// pids are unique on one machine only, and a temporary can be called stale (its writer gone)
// only by a process on the machine that wrote it.
class AtomicOutput {
 public:
  enum class Temp { kPid, kHostAndPid };
  explicit AtomicOutput(std::string path, Temp temp = Temp::kPid);
  ~AtomicOutput();
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  const std::string& temp_path() const noexcept { return temp_path_; }
  const std::string& path() const noexcept { return path_; }

  // fsyncs the temporary file, renames it over `path`, and fsyncs the directory so that the
  // rename itself survives a crash. Throws IoError.
  void commit();

 private:
  std::string path_;
  std::string temp_path_;
  bool committed_ = false;
};

}  // namespace mll::fs
