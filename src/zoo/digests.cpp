#include "mll/zoo/digests.hpp"

#include <sys/stat.h>

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/core/hash.hpp"
#include "mll/core/log.hpp"
#include "mll/zoo/model_spec.hpp"

namespace mll::zoo {
namespace {

// The first line of the file; files of other versions (or none) are not read.
constexpr const char* kHeader = "mll-digests 2";

std::string absolute(const std::string& file) {
  std::error_code ec;
  const auto path = std::filesystem::absolute(file, ec);
  return ec ? file : path.lexically_normal().string();
}

bool is_sha256(const std::string& text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

std::string checksum_hex(const std::string& text) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016" PRIx64, checksum64(text.data(), text.size()));
  return hex;
}

std::int64_t nanoseconds(const timespec& t) {
  return static_cast<std::int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

}  // namespace

ModelDigests::ModelDigests(std::string path) : path_(std::move(path)) {
  if (path_.empty()) return;
  std::ifstream in(path_);
  std::string line;
  if (!std::getline(in, line) || line != kHeader) return;  // absent or another version
  int damaged = 0;
  while (std::getline(in, line)) {
    // The checksum first: a damaged line is never parsed.
    const auto space = line.find(' ');
    if (space != 16 || checksum_hex(line.substr(space + 1)) != line.substr(0, space)) {
      ++damaged;
      continue;
    }
    std::istringstream fields(line.substr(space + 1));
    Entry e;
    std::string file;
    if (!(fields >> e.sha256 >> e.state.size >> e.state.mtime_ns >> e.state.ctime_ns >>
          e.state.device >> e.state.inode) ||
        !is_sha256(e.sha256)) {
      ++damaged;
      continue;
    }
    std::getline(fields >> std::ws, file);
    if (!file.empty()) entries_[file] = e;
  }
  if (damaged > 0) {
    log::warn(path_, ": ", damaged, " damaged line(s) ignored; those model files are hashed again");
  }
}

std::optional<ModelDigests::FileState> ModelDigests::state_of(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return std::nullopt;
  FileState s;
  s.size = static_cast<std::int64_t>(st.st_size);
  s.mtime_ns = nanoseconds(st.st_mtim);
  s.ctime_ns = nanoseconds(st.st_ctim);
  s.device = static_cast<std::int64_t>(st.st_dev);
  s.inode = static_cast<std::int64_t>(st.st_ino);
  return s;
}

std::optional<std::string> ModelDigests::lookup(const std::string& file) const {
  const auto it = entries_.find(absolute(file));
  if (it == entries_.end()) return std::nullopt;
  const auto now = state_of(file);
  if (!now || !(*now == it->second.state)) return std::nullopt;
  return it->second.sha256;
}

void ModelDigests::remember(const std::string& file, const std::string& sha256,
                            const FileState& hashed) {
  if (path_.empty() || !is_sha256(sha256)) return;
  // Changed while it was read: the digest may be of neither version.
  const auto now = state_of(file);
  if (!now || !(*now == hashed)) return;
  Entry& slot = entries_[absolute(file)];
  if (slot.sha256 == sha256 && slot.state == hashed) return;
  slot = Entry{sha256, hashed};
  changed_ = true;
}

void ModelDigests::save() const {
  if (path_.empty() || !changed_) return;
  try {
    // Written by label and select, possibly on several machines at once.
    fs::AtomicOutput out(path_, fs::AtomicOutput::Temp::kHostAndPid);
    {
      std::ofstream file(out.temp_path(), std::ios::trunc);
      file << kHeader << '\n';
      for (const auto& [name, e] : entries_) {
        std::ostringstream fields;
        fields << e.sha256 << ' ' << e.state.size << ' ' << e.state.mtime_ns << ' '
               << e.state.ctime_ns << ' ' << e.state.device << ' ' << e.state.inode << ' ' << name;
        file << checksum_hex(fields.str()) << ' ' << fields.str() << '\n';
      }
      file.flush();
      if (!file) MLL_THROW(IoError, path_, ": write failed");
    }
    out.commit();
  } catch (const std::exception& e) {
    log::warn("model digests not remembered (every file is hashed next time): ", e.what());
  }
}

std::string file_sha256(const std::string& file, ModelDigests& digests) {
  if (auto known = digests.lookup(file)) return *known;
  const auto before = ModelDigests::state_of(file);
  std::string sha256 = sha256_file(file);
  if (before) digests.remember(file, sha256, *before);
  return sha256;
}

void check_labeled_file(const ModelSpec& spec, const std::string& labeled_sha256,
                        const std::string& digests_path) {
  ModelDigests digests(digests_path);
  const std::string& file = spec.model_path();
  if (digests.lookup(file) == labeled_sha256) return;
  // Not remembered, or remembered otherwise (the digests file is only a cache): the file's own
  // bytes decide. Only an agreeing digest is remembered; `mll label` hashes a replaced file
  // itself.
  const auto before = ModelDigests::state_of(file);
  const std::string now = sha256_file(file);
  if (now == labeled_sha256) {
    if (before) digests.remember(file, now, *before);
    digests.save();
    return;
  }
  MLL_THROW(DataError, "model '", spec.id, "': ", file, " is not the file it was labeled from ",
            "(sha256 ", labeled_sha256.substr(0, 12), ", now ", now.substr(0, 12),
            "); restore that file, or label this one under another id");
}

}  // namespace mll::zoo
