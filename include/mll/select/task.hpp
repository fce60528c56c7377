// Target task specs (docs/tasks.md): class names, domain text, per-class captions and the task's
// images. Parsing validates everything up front so that a bad task fails before any model runs,
// with one line naming the file and the offending value. Nothing here is collective.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mll::select {

struct Task {
  std::string path;                  // the task file ("" when parsed from memory)
  std::string name;                  // [A-Za-z0-9._-]+
  std::vector<std::string> classes;  // ordered, unique, non-empty
  std::string domain;
  std::string task_text;  // the "task" key
  // Per-class captions, merged from "captions" and "captions_file" (inline ones first).
  std::map<std::string, std::vector<std::string>> captions;
  // Images: at most one of these is set (resolved against the task file's directory).
  std::string images_dir;
  std::string images_manifest;
  std::string images_shards;          // webdataset shards: a .tar, a folder, or a brace pattern
  std::string class_field = "label";  // with shards: the .json field of a sample's class
  bool labeled = false;

  bool has_images() const noexcept {
    return !images_dir.empty() || !images_manifest.empty() || !images_shards.empty();
  }
  // Index of a class name, or -1. Does not throw.
  std::int32_t class_index(const std::string& name) const noexcept;
};

// Reads and validates a task file. Throws DataError "<file>: <what is wrong>" for a missing file,
// bad JSON, a missing or empty class list, duplicate or empty class names, a bad name, captions of
// classes not in the task, an unreadable or malformed captions file (named), bad image settings.
Task load_task(const std::string& path);

// The same for JSON text in memory; `origin` names it in messages and relative paths are resolved
// against `base_dir`. Throws DataError.
Task parse_task(const std::string& json_text, const std::string& origin,
                const std::string& base_dir);

// Reads a caption file in the authors' format {class: [caption, ...]} (a single string is accepted
// for a class too). Throws DataError naming the file (missing, not JSON, wrong types).
std::map<std::string, std::vector<std::string>> read_caption_file(const std::string& path);

struct TaskImage {
  std::string path;
  std::int32_t label = -1;  // class index; -1 when the task is unlabeled
};

// The task's images in a deterministic order (class folders in class order, files sorted by name;
// manifest lines in file order; shards in spec order, each in archive order, paths being member
// references, archive/image_ref.hpp). Image files are *.jpg, *.jpeg, *.png (any case); other files
// are ignored. A shard sample's class is its `.cls` or JSON field `class_field`: a class name, or
// an index (into classnames.txt beside the shards when there is one, else into the task's
// classes). Throws DataError naming the file, folder or shard sample when the images are missing,
// a folder, manifest line or sample names a class not in the task, a sample of a labeled task has
// no class, a listed file does not exist, a shard is corrupt, or nothing is found; UsageError
// when the task has no images.
std::vector<TaskImage> list_images(const Task& task);

}  // namespace mll::select
