#include "mll/probe/sources.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <unordered_map>
#include <utility>

#include "mll/archive/webdataset.hpp"
#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/graph/wordnet.hpp"

namespace mll::probe {
namespace {

namespace stdfs = std::filesystem;

bool is_hidden(const stdfs::path& path) {
  const std::string name = path.filename().string();
  return !name.empty() && name[0] == '.';
}

std::string trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

// A directory path without a trailing separator, absolute, so that the probe set can be used
// from another working directory.
std::string normal_dir(const std::string& dir) {
  stdfs::path path = stdfs::absolute(dir).lexically_normal();
  if (path.has_parent_path() && path.filename().empty()) path = path.parent_path();
  return path.string();
}

void sort_files(std::vector<ImageFile>& files) {
  std::sort(files.begin(), files.end(),
            [](const ImageFile& a, const ImageFile& b) { return a.path < b.path; });
}

// The images below one wnid folder, paths relative to the tree's root.
std::vector<ImageFile> scan_class_folder(const stdfs::path& folder, const std::string& wnid) {
  std::vector<ImageFile> files;
  std::error_code ec;
  stdfs::recursive_directory_iterator it(folder, ec);
  for (; !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
    const auto& entry = *it;
    // A separate code for queries on the entry: a dangling link is skipped, not a listing error.
    std::error_code entry_ec;
    if (is_hidden(entry.path())) {
      if (entry.is_directory(entry_ec)) it.disable_recursion_pending();
      continue;
    }
    if (!entry.is_regular_file(entry_ec) || !is_image_file_name(entry.path().filename().string())) {
      continue;
    }
    const auto size = entry.file_size(entry_ec);
    if (entry_ec) {
      MLL_THROW(IoError, entry.path().string(),
                ": cannot read the file size: ", entry_ec.message());
    }
    if (size == 0) MLL_THROW(DataError, entry.path().string(), ": image file is empty (0 bytes)");
    files.push_back({wnid + "/" + entry.path().lexically_relative(folder).generic_string(),
                     static_cast<std::int64_t>(size)});
  }
  if (ec) MLL_THROW(IoError, folder.string(), ": cannot list image folder: ", ec.message());
  sort_files(files);
  return files;
}

bool is_wnid(const std::string& text) {
  std::uint32_t offset = 0;
  return graph::parse_wnid(text, &offset);
}

// The wnid a sample's key names: its folder (`n01440764/x`) or its start (`n01440764_10026`, as
// ImageNet names its files); "" when it names none.
std::string wnid_of_key(const std::string& key) {
  const stdfs::path path(key);
  const std::string folder = path.parent_path().filename().string();
  if (is_wnid(folder)) return folder;
  const std::string base = path.filename().string();
  const std::string prefix = base.substr(0, base.find('_'));
  return is_wnid(prefix) ? prefix : "";
}

// The wnid a shard's sample belongs to (read_shards in sources.hpp says the order).
std::string sample_wnid(const archive::Sample& sample, const archive::Shards& shards,
                        const std::string& json_field) {
  const auto cls = archive::sample_class(sample, shards, json_field);
  if (!cls.name.empty()) {
    if (!is_wnid(cls.name)) {
      MLL_THROW(DataError, sample.where, ": class '", cls.name,
                "' is not a wnid (a probe set needs n%08d classes)");
    }
    return cls.name;
  }
  if (cls.index) {
    MLL_THROW(DataError, sample.where, ": class index ", *cls.index,
              " but no classnames.txt beside the shards to name it");
  }
  const std::string from_key = wnid_of_key(sample.key);
  if (!from_key.empty()) return from_key;
  MLL_THROW(DataError, sample.where, ": no class (no .cls member, no JSON field '", json_field,
            "', and the key does not start with a wnid)");
}

}  // namespace

std::size_t ImageSource::entry_count() const {
  std::size_t count = 0;
  for (const auto& [wnid, images] : by_wnid) count += images.files.size();
  return count;
}

bool is_image_file_name(const std::string& name) {
  const auto dot = name.rfind('.');
  if (dot == std::string::npos || dot == 0) return false;
  std::string ext = name.substr(dot + 1);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == "jpg" || ext == "jpeg" || ext == "png";
}

ImageSource scan_image_tree(const std::string& dir) {
  std::error_code ec;
  if (!stdfs::exists(dir, ec)) MLL_THROW(DataError, dir, ": image directory not found");
  if (!stdfs::is_directory(dir, ec)) MLL_THROW(DataError, dir, ": not a directory");

  ImageSource source;
  source.root = normal_dir(dir);
  source.description = "image tree " + source.root;

  std::vector<std::pair<std::string, stdfs::path>> folders;
  for (stdfs::directory_iterator it(source.root, ec); !ec && it != stdfs::directory_iterator();
       it.increment(ec)) {
    std::error_code entry_ec;
    if (is_hidden(it->path()) || !it->is_directory(entry_ec)) continue;
    const std::string name = it->path().filename().string();
    std::uint32_t offset = 0;
    if (!graph::parse_wnid(name, &offset)) {
      MLL_THROW(DataError, it->path().string(),
                ": folder name is not a wnid (an image tree holds one n%08d folder per class)");
    }
    folders.emplace_back(name, it->path());
  }
  if (ec) MLL_THROW(IoError, source.root, ": cannot list image directory: ", ec.message());
  std::sort(folders.begin(), folders.end());

  for (const auto& [wnid, folder] : folders) {
    auto files = scan_class_folder(folder, wnid);
    if (files.empty()) continue;
    source.by_wnid[wnid] = ImageClass{std::move(files), folder.string()};
  }
  if (source.by_wnid.empty()) {
    MLL_THROW(DataError, source.root,
              folders.empty() ? ": no wnid folders (expected one n%08d folder per class)"
                              : ": no image files (.jpg, .jpeg, .png) in any wnid folder");
  }
  return source;
}

ImageSource read_manifest(const std::string& path) {
  fs::require_input_file(path, "image manifest");
  std::ifstream in(path);
  if (!in) MLL_THROW(IoError, path, ": cannot open image manifest");

  const stdfs::path base = stdfs::path(normal_dir(stdfs::absolute(path).parent_path().string()));
  ImageSource source;
  source.description = "manifest " + path;
  bool any_relative = false;
  std::unordered_map<std::string, std::size_t> first_line;  // "wnid\tpath" -> line

  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string trimmed = trim(line);
    if (trimmed.empty() || trimmed[0] == '#') continue;
    // Only trailing blanks go: a leading tab means an empty path, not a shorter line.
    const std::string text = line.substr(0, line.find_last_not_of(" \t\r\n") + 1);
    const std::string where = cat(path, ":", number);
    const auto tab = text.find('\t');
    if (tab == std::string::npos || text.find('\t', tab + 1) != std::string::npos) {
      MLL_THROW(DataError, where, ": expected 'path<TAB>wnid', got '", text, "'");
    }
    const std::string path_text = trim(text.substr(0, tab));
    const std::string wnid = trim(text.substr(tab + 1));
    if (path_text.empty()) MLL_THROW(DataError, where, ": empty image path");
    std::uint32_t offset = 0;
    if (!graph::parse_wnid(wnid, &offset)) {
      MLL_THROW(DataError, where, ": malformed wnid '", wnid, "' (expected n%08d)");
    }

    const stdfs::path written = stdfs::path(path_text).lexically_normal();
    const stdfs::path full = written.is_absolute() ? written : base / written;
    std::error_code ec;
    const auto status = stdfs::status(full, ec);
    if (!stdfs::exists(status)) {
      MLL_THROW(DataError, where, ": image '", full.string(), "' not found");
    }
    if (!stdfs::is_regular_file(status)) {
      MLL_THROW(DataError, where, ": image '", full.string(), "' is not a regular file");
    }
    const auto size = stdfs::file_size(full, ec);
    if (ec) MLL_THROW(IoError, where, ": cannot read the size of '", full.string(), "'");
    if (size == 0) MLL_THROW(DataError, where, ": image '", full.string(), "' is empty (0 bytes)");

    any_relative = any_relative || !written.is_absolute();
    const std::string stored = written.generic_string();
    const auto [seen, inserted] = first_line.emplace(wnid + '\t' + stored, number);
    if (!inserted) {
      MLL_THROW(DataError, where, ": '", stored, "' is listed twice for ", wnid, " (first on line ",
                seen->second, ")");
    }
    auto& images = source.by_wnid[wnid];
    if (images.where.empty()) images.where = where;
    images.files.push_back({stored, static_cast<std::int64_t>(size)});
  }
  if (in.bad()) MLL_THROW(IoError, path, ": error reading image manifest");
  if (source.by_wnid.empty()) MLL_THROW(DataError, path, ": image manifest lists no images");
  for (auto& [wnid, images] : source.by_wnid) sort_files(images.files);
  // Relative entries need the manifest's directory; a manifest of absolute paths needs nothing,
  // and then the probe set does not depend on where the manifest was.
  if (any_relative) source.root = base.string();
  return source;
}

ImageSource read_shards(const std::string& spec, const std::string& json_field) {
  const auto shards = archive::scan_shards(spec);
  ImageSource source;
  source.root = shards.root;
  source.description = "shards " + spec;
  for (const auto& sample : shards.samples) {
    auto& images = source.by_wnid[sample_wnid(sample, shards, json_field)];
    if (images.where.empty()) images.where = sample.where;
    images.files.push_back({sample.image, sample.image_size});
  }
  for (auto& [wnid, images] : source.by_wnid) sort_files(images.files);
  return source;
}

}  // namespace mll::probe
