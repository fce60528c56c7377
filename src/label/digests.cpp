#include "digests.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "mll/core/fs.hpp"
#include "mll/core/log.hpp"

namespace mll::label {
namespace {

std::string absolute(const std::string& file) {
  std::error_code ec;
  const auto path = std::filesystem::absolute(file, ec);
  return ec ? file : path.lexically_normal().string();
}

bool is_sha256(const std::string& text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

ModelDigests::ModelDigests(std::string path) : path_(std::move(path)) {
  if (path_.empty()) return;
  std::ifstream in(path_);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    Entry e;
    std::string file;
    if (!(fields >> e.sha256 >> e.size >> e.mtime_ns >> e.inode) || !is_sha256(e.sha256)) {
      continue;  // not a line of ours: hashing decides
    }
    std::getline(fields >> std::ws, file);
    if (!file.empty()) entries_[file] = e;
  }
}

std::optional<ModelDigests::Entry> ModelDigests::stat_of(const std::string& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return std::nullopt;
  Entry e;
  e.size = static_cast<std::int64_t>(st.st_size);
  e.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  e.inode = static_cast<std::int64_t>(st.st_ino);
  return e;
}

std::optional<std::string> ModelDigests::lookup(const std::string& file) const {
  const auto it = entries_.find(absolute(file));
  if (it == entries_.end()) return std::nullopt;
  const auto now = stat_of(file);
  if (!now || now->size != it->second.size || now->mtime_ns != it->second.mtime_ns ||
      now->inode != it->second.inode) {
    return std::nullopt;
  }
  return it->second.sha256;
}

void ModelDigests::remember(const std::string& file, const std::string& sha256) {
  if (path_.empty()) return;
  auto now = stat_of(file);
  if (!now || !is_sha256(sha256)) return;
  now->sha256 = sha256;
  Entry& slot = entries_[absolute(file)];
  if (slot.sha256 == now->sha256 && slot.size == now->size && slot.mtime_ns == now->mtime_ns &&
      slot.inode == now->inode) {
    return;
  }
  slot = *now;
  changed_ = true;
}

void ModelDigests::save() const {
  if (path_.empty() || !changed_) return;
  try {
    fs::AtomicOutput out(path_);
    {
      std::ofstream file(out.temp_path(), std::ios::trunc);
      for (const auto& [name, e] : entries_) {
        file << e.sha256 << ' ' << e.size << ' ' << e.mtime_ns << ' ' << e.inode << ' ' << name
             << '\n';
      }
      file.flush();
      if (!file) MLL_THROW(IoError, path_, ": write failed");
    }
    out.commit();
  } catch (const std::exception& e) {
    log::warn("model digests not remembered (every file is hashed next time): ", e.what());
  }
}

}  // namespace mll::label
