// Webdataset shards as image sources (docs/probe.md "Webdataset shards", docs/tasks.md): tar
// files whose members `<key>.<ext>` group into samples by key, one image (`jpg`, `jpeg`, `png`,
// `webp`) per sample plus optional `cls` / `json` / `txt` members. CLIP_benchmark's layout adds
// `classnames.txt` (line i names class i) and `zeroshot_classification_templates.txt` beside the
// shards or one folder up.
//
// Layout rules are webdataset's: the key is the member name up to the first '.' of its last path
// component, the extension the rest (compared in lower case). Only image members' offsets and
// sizes are recorded; `cls` and `json` members are read during the same sequential pass.
// Crash model: nothing here writes.
// Throws: DataError naming the shard and the sample for a pattern that matches nothing, a corrupt
// shard, a sample without an image or with two; IoError when reading fails. Nothing here is
// collective.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mll::archive {

// The shard files a spec names, in order: a `.tar` file; a folder (every `*.tar` in it, sorted by
// name); or a pattern with brace expressions, `{000000..000009}` (numeric ranges keep the first
// bound's zero padding) or `{train,val}`, expanded left to right. Throws DataError when nothing
// matches or a named shard does not exist, UsageError for a malformed brace expression.
std::vector<std::string> expand_shard_spec(const std::string& spec);

struct Sample {
  std::string key;
  std::string image;  // member reference (image_ref.hpp) of the image, shard relative to root
  std::int64_t image_size = 0;
  std::string cls;    // the `.cls` member's text, trimmed ("" when the sample has none)
  std::string json;   // the `.json` member's text ("" when none)
  std::string where;  // "SHARD: sample KEY", for messages
};

struct Shards {
  std::string spec;                // as given
  std::string root;                // absolute folder that holds every shard
  std::vector<std::string> files;  // the shards, relative to root, in spec order
  std::vector<Sample> samples;     // shard by shard, each in archive order
  std::string classnames_path;     // "" when there is no classnames.txt
  std::vector<std::string> classnames;
  std::string templates_path;          // "" when there is no zeroshot_classification_templates.txt
  std::vector<std::string> templates;  // as written, with CLIP_benchmark's `{c}` placeholder
};

// The side file `name` (classnames.txt, zeroshot_classification_templates.txt) of the shards
// `spec` names: in the folder that holds them or one folder up; "" when there is none. Reads no
// shard. Throws as expand_shard_spec.
std::string find_side_file(const std::string& spec, const std::string& name);

// Lists every sample of the shards `spec` names (one sequential pass per shard). Throws as the
// header says.
Shards scan_shards(const std::string& spec);

// A sample's class as its files give it: `.cls` (an integer, or a name) or else the JSON field
// `json_field` (an integer or a string). An integer i is also named when classnames.txt has a
// line i. Both empty when the sample carries no class.
struct SampleClass {
  std::optional<std::int64_t> index;
  std::string name;
};
// Throws DataError naming the sample for JSON that does not parse, a field of another type, or an
// index outside classnames.txt.
SampleClass sample_class(const Sample& sample, const Shards& shards, const std::string& json_field);

}  // namespace mll::archive
