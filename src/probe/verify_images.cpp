// `mll probe build --verify`: decode every candidate image before any is chosen, so that a
// probe set never holds a file labeling cannot read (hours into a multi-node run).
#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "mll/archive/image_ref.hpp"
#include "mll/core/error.hpp"
#include "mll/core/progress.hpp"
#include "mll/image/image.hpp"
#include "mll/probe/sources.hpp"

namespace mll::probe {

std::vector<std::string> find_unreadable_images(const ImageSource& source, int threads,
                                                bool progress) {
  std::vector<std::string> paths;
  for (const auto& [wnid, cls] : source.by_wnid) {
    for (const auto& f : cls.files) paths.push_back(f.path);
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  std::unique_ptr<Progress> bar;
  if (progress)
    bar = std::make_unique<Progress>("verify", static_cast<std::int64_t>(paths.size()), "images");
  std::vector<std::string> problems(paths.size());
  std::atomic<std::size_t> next{0};
  std::mutex mutex;  // the progress line
  const auto work = [&] {
    archive::ImageReader reader;  // shard members: one open descriptor per thread
    for (std::size_t i = next++; i < paths.size(); i = next++) {
      const std::string full = source.root.empty() ? paths[i] : source.root + "/" + paths[i];
      try {
        image::decode_memory(reader.read(full), full);
      } catch (const Error& e) {
        problems[i] = e.what();
      }
      if (bar) {
        std::lock_guard lock(mutex);
        bar->advance(1);
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (bar) bar->finish();
  std::vector<std::string> out;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    if (!problems[i].empty()) out.push_back(paths[i] + ": " + problems[i]);
  }
  return out;
}

ImageSource without(const ImageSource& source, const std::vector<std::string>& unreadable) {
  std::set<std::string> bad;
  for (const auto& line : unreadable) bad.insert(line.substr(0, line.find(": ")));
  ImageSource kept = source;
  for (auto it = kept.by_wnid.begin(); it != kept.by_wnid.end();) {
    auto& files = it->second.files;
    files.erase(std::remove_if(files.begin(), files.end(),
                               [&](const ImageFile& f) { return bad.count(f.path) > 0; }),
                files.end());
    it = files.empty() ? kept.by_wnid.erase(it) : std::next(it);
  }
  return kept;
}

}  // namespace mll::probe
