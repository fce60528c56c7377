#include "mll/select/task.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "mll/archive/webdataset.hpp"
#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/core/log.hpp"

namespace mll::select {
namespace {

namespace stdfs = std::filesystem;
using nlohmann::json;

std::string resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || stdfs::path(path).is_absolute() || base_dir.empty()) return path;
  return (stdfs::path(base_dir) / path).lexically_normal().string();
}

bool valid_name(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

// {class: [caption, ...]} or {class: caption}.
std::map<std::string, std::vector<std::string>> parse_captions(const json& value,
                                                               const std::string& origin) {
  if (!value.is_object()) {
    MLL_THROW(DataError, origin, ": captions must be an object {class: [caption, ...]}");
  }
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& [key, captions] : value.items()) {
    auto& list = out[key];
    if (captions.is_string()) {
      list.push_back(captions.get<std::string>());
      continue;
    }
    if (!captions.is_array()) {
      MLL_THROW(DataError, origin, ": captions of '", key, "' must be a list of strings");
    }
    for (const auto& c : captions) {
      if (!c.is_string()) {
        MLL_THROW(DataError, origin, ": captions of '", key, "' must be a list of strings");
      }
      if (!c.get<std::string>().empty()) list.push_back(c.get<std::string>());
    }
  }
  return out;
}

std::string string_field(const json& doc, const char* key, const std::string& origin) {
  if (!doc.contains(key) || doc[key].is_null()) return "";
  if (!doc[key].is_string()) MLL_THROW(DataError, origin, ": '", key, "' must be a string");
  return doc[key].get<std::string>();
}

bool is_image_file(const stdfs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

std::vector<std::string> sorted_images_in(const stdfs::path& dir, bool recursive) {
  std::vector<std::string> files;
  if (recursive) {
    for (const auto& e : stdfs::recursive_directory_iterator(dir)) {
      if (e.is_regular_file() && is_image_file(e.path())) files.push_back(e.path().string());
    }
  } else {
    for (const auto& e : stdfs::directory_iterator(dir)) {
      if (e.is_regular_file() && is_image_file(e.path())) files.push_back(e.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

std::int32_t Task::class_index(const std::string& name_) const noexcept {
  const auto it = std::find(classes.begin(), classes.end(), name_);
  return it == classes.end() ? -1 : static_cast<std::int32_t>(it - classes.begin());
}

std::map<std::string, std::vector<std::string>> read_caption_file(const std::string& path) {
  if (!stdfs::is_regular_file(path)) {
    MLL_THROW(DataError, path, ": caption file does not exist or is not a file");
  }
  std::string text;
  try {
    text = fs::read_file(path);
  } catch (const Error& e) {
    MLL_THROW(DataError, path, ": cannot read the caption file: ", e.what());
  }
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    MLL_THROW(DataError, path, ": not valid JSON (", e.what(), ")");
  }
  return parse_captions(doc, path);
}

Task parse_task(const std::string& json_text, const std::string& origin,
                const std::string& base_dir) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::exception& e) {
    MLL_THROW(DataError, origin, ": not valid JSON (", e.what(), ")");
  }
  if (!doc.is_object()) MLL_THROW(DataError, origin, ": a task must be a JSON object");
  Task task;
  task.path = origin;
  task.name = string_field(doc, "name", origin);
  if (task.name.empty()) MLL_THROW(DataError, origin, ": 'name' is missing");
  if (!valid_name(task.name)) {
    MLL_THROW(DataError, origin, ": name '", task.name, "' must match [A-Za-z0-9._-]+");
  }
  if (!doc.contains("classes") || !doc["classes"].is_array()) {
    MLL_THROW(DataError, origin, ": 'classes' must be a list of class names");
  }
  if (doc["classes"].empty()) MLL_THROW(DataError, origin, ": the class list is empty");
  std::set<std::string> seen;
  for (const auto& c : doc["classes"]) {
    if (!c.is_string()) MLL_THROW(DataError, origin, ": class names must be strings");
    const std::string name = c.get<std::string>();
    if (name.find_first_not_of(" \t") == std::string::npos) {
      MLL_THROW(DataError, origin, ": class ", task.classes.size(), " has an empty name");
    }
    if (!seen.insert(name).second) {
      MLL_THROW(DataError, origin, ": duplicate class name '", name, "'");
    }
    task.classes.push_back(name);
  }
  task.domain = string_field(doc, "domain", origin);
  task.task_text = string_field(doc, "task", origin);

  const auto merge = [&](const std::map<std::string, std::vector<std::string>>& captions,
                         const std::string& where) {
    for (const auto& [cls, list] : captions) {
      if (task.class_index(cls) < 0) {
        MLL_THROW(DataError, where, ": captions given for '", cls, "', which is not a class of ",
                  origin);
      }
      auto& into = task.captions[cls];
      into.insert(into.end(), list.begin(), list.end());
    }
  };
  if (doc.contains("captions")) merge(parse_captions(doc["captions"], origin), origin);
  const std::string captions_file = string_field(doc, "captions_file", origin);
  if (!captions_file.empty()) {
    const std::string path = resolve(base_dir, captions_file);
    std::map<std::string, std::vector<std::string>> captions;
    try {
      captions = read_caption_file(path);
    } catch (Error& e) {
      e.add_context(origin);
      throw;
    }
    merge(captions, path);
  }

  if (doc.contains("images") && !doc["images"].is_null()) {
    const auto& images = doc["images"];
    if (!images.is_object()) {
      MLL_THROW(DataError, origin,
                ": 'images' must be {\"dir\": D}, {\"manifest\": F} or {\"shards\": S}");
    }
    const std::string dir = string_field(images, "dir", origin);
    const std::string manifest = string_field(images, "manifest", origin);
    const std::string shards = string_field(images, "shards", origin);
    if (int{!dir.empty()} + int{!manifest.empty()} + int{!shards.empty()} != 1) {
      MLL_THROW(DataError, origin,
                ": 'images' needs exactly one of \"dir\", \"manifest\" and \"shards\"");
    }
    task.images_dir = resolve(base_dir, dir);
    task.images_manifest = resolve(base_dir, manifest);
    task.images_shards = resolve(base_dir, shards);
    const std::string field = string_field(images, "class_field", origin);
    if (!field.empty()) task.class_field = field;
    task.labeled = true;
  }
  if (doc.contains("labeled")) {
    if (!doc["labeled"].is_boolean())
      MLL_THROW(DataError, origin, ": 'labeled' must be true or false");
    task.labeled = doc["labeled"].get<bool>() && task.has_images();
  }
  return task;
}

Task load_task(const std::string& path) {
  if (!stdfs::is_regular_file(path)) {
    MLL_THROW(DataError, path, ": task file does not exist or is not a file");
  }
  const std::string base = stdfs::path(path).parent_path().string();
  return parse_task(fs::read_file(path), path, base.empty() ? "." : base);
}

namespace {

// The class index of a shard sample (list_images in task.hpp says how it is found).
std::int32_t sample_label(const Task& task, const archive::Sample& sample,
                          const archive::Shards& shards) {
  const auto cls = archive::sample_class(sample, shards, task.class_field);
  if (!cls.name.empty()) {
    const auto label = task.class_index(cls.name);
    if (label < 0) {
      MLL_THROW(DataError, sample.where, ": class '", cls.name, "' is not a class of the task ",
                task.path);
    }
    return label;
  }
  if (cls.index) {
    if (*cls.index >= static_cast<std::int64_t>(task.classes.size())) {
      MLL_THROW(DataError, sample.where, ": class index ", *cls.index, " but the task ", task.path,
                " has ", task.classes.size(), " classes");
    }
    return static_cast<std::int32_t>(*cls.index);
  }
  MLL_THROW(DataError, sample.where, ": no class (no .cls member and no JSON field '",
            task.class_field, "'), and the task is labeled");
}

std::vector<TaskImage> list_shard_images(const Task& task) {
  const auto shards = archive::scan_shards(task.images_shards);
  std::vector<TaskImage> out;
  out.reserve(shards.samples.size());
  for (const auto& sample : shards.samples) {
    out.push_back({(stdfs::path(shards.root) / sample.image).string(),
                   task.labeled ? sample_label(task, sample, shards) : -1});
  }
  return out;
}

}  // namespace

std::vector<TaskImage> list_images(const Task& task) {
  if (!task.has_images()) {
    MLL_THROW(UsageError, task.path, ": the task lists no images (add \"images\" to the task)");
  }
  std::vector<TaskImage> out;
  if (!task.images_shards.empty()) {
    out = list_shard_images(task);
  } else if (!task.images_dir.empty()) {
    const stdfs::path dir(task.images_dir);
    if (!stdfs::is_directory(dir)) {
      MLL_THROW(DataError, task.path, ": image folder ", task.images_dir, " does not exist");
    }
    if (!task.labeled) {
      for (auto& f : sorted_images_in(dir, true)) out.push_back({std::move(f), -1});
    } else {
      std::vector<std::string> folders;
      for (const auto& e : stdfs::directory_iterator(dir)) {
        if (!e.is_directory()) continue;
        const std::string name = e.path().filename().string();
        if (task.class_index(name) < 0) {
          MLL_THROW(DataError, e.path().string(), ": folder '", name,
                    "' is not a class of the task ", task.path);
        }
      }
      for (std::size_t c = 0; c < task.classes.size(); ++c) {
        const stdfs::path folder = dir / task.classes[c];
        if (!stdfs::is_directory(folder)) {
          log::warn(task.path, ": class '", task.classes[c], "' has no image folder in ",
                    task.images_dir);
          continue;
        }
        auto files = sorted_images_in(folder, true);
        if (files.empty()) {
          log::warn(task.path, ": class '", task.classes[c], "' has no images in ",
                    folder.string());
        }
        for (auto& f : files) out.push_back({std::move(f), static_cast<std::int32_t>(c)});
      }
    }
  } else {
    const std::string& manifest = task.images_manifest;
    if (!stdfs::is_regular_file(manifest)) {
      MLL_THROW(DataError, task.path, ": image manifest ", manifest, " does not exist");
    }
    std::ifstream in(manifest);
    if (!in) MLL_THROW(IoError, manifest, ": cannot open");
    const std::string base = stdfs::path(manifest).parent_path().string();
    std::string line;
    for (std::size_t number = 1; std::getline(in, line); ++number) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line[0] == '#') continue;
      const auto tab = line.find('\t');
      const std::string file = resolve(base, line.substr(0, tab));
      std::int32_t label = -1;
      if (task.labeled) {
        if (tab == std::string::npos) {
          MLL_THROW(DataError, manifest, ":", number,
                    ": expected 'path<TAB>class' (the task is labeled)");
        }
        const std::string cls = line.substr(tab + 1);
        label = task.class_index(cls);
        if (label < 0) {
          MLL_THROW(DataError, manifest, ":", number, ": class '", cls,
                    "' is not a class of the task ", task.path);
        }
      }
      if (!stdfs::is_regular_file(file)) {
        MLL_THROW(DataError, manifest, ":", number, ": image ", file, " does not exist");
      }
      out.push_back({file, label});
    }
  }
  if (out.empty()) MLL_THROW(DataError, task.path, ": no images found for the task");
  return out;
}

}  // namespace mll::select
