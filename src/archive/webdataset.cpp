#include "mll/archive/webdataset.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>

#include "mll/archive/image_ref.hpp"
#include "mll/archive/tar.hpp"
#include "mll/core/error.hpp"

namespace mll::archive {
namespace {

namespace stdfs = std::filesystem;

// A numeric range this long is a typo, not a dataset.
constexpr std::uint64_t kMaxBraceItems = 10'000'000;

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

bool all_digits(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(),
                                      [](unsigned char c) { return std::isdigit(c) != 0; });
}

// The alternatives of one brace expression's inside: "000..009" or "a,b,c".
std::vector<std::string> brace_items(const std::string& inside, const std::string& spec) {
  const auto dots = inside.find("..");
  if (dots != std::string::npos) {
    const std::string from = inside.substr(0, dots), to = inside.substr(dots + 2);
    if (!all_digits(from) || !all_digits(to) || from.size() > 18 || to.size() > 18) {
      MLL_THROW(UsageError, spec, ": malformed range {", inside, "} (expected {FIRST..LAST})");
    }
    const std::uint64_t a = std::stoull(from), b = std::stoull(to);
    if (b < a || b - a >= kMaxBraceItems) {
      MLL_THROW(UsageError, spec, ": range {", inside, "} is empty or too long");
    }
    std::vector<std::string> items;
    for (std::uint64_t v = a; v <= b; ++v) {
      std::string text = std::to_string(v);
      if (text.size() < from.size()) text.insert(0, from.size() - text.size(), '0');
      items.push_back(std::move(text));
    }
    return items;
  }
  if (inside.find(',') == std::string::npos) {
    MLL_THROW(UsageError, spec, ": malformed brace expression {", inside,
              "} (expected {FIRST..LAST} or {a,b,...})");
  }
  std::vector<std::string> items;
  std::size_t start = 0;
  for (;;) {
    const auto comma = inside.find(',', start);
    items.push_back(inside.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return items;
}

std::vector<std::string> expand_braces(const std::string& pattern, const std::string& spec) {
  const auto open = pattern.find('{');
  if (open == std::string::npos) {
    if (pattern.find('}') != std::string::npos) {
      MLL_THROW(UsageError, spec, ": '}' without '{'");
    }
    return {pattern};
  }
  const auto close = pattern.find('}', open);
  if (close == std::string::npos) MLL_THROW(UsageError, spec, ": '{' without '}'");
  const std::string head = pattern.substr(0, open);
  const auto tails = expand_braces(pattern.substr(close + 1), spec);
  std::vector<std::string> out;
  for (const auto& item : brace_items(pattern.substr(open + 1, close - open - 1), spec)) {
    for (const auto& tail : tails) out.push_back(head + item + tail);
  }
  return out;
}

bool is_shard_name(const stdfs::path& path) {
  const std::string name = path.filename().string();
  return !name.empty() && name[0] != '.' && lower(path.extension().string()) == ".tar";
}

// webdataset's split: the key ends at the first '.' of the last path component.
bool split_member(const std::string& name, std::string* key, std::string* extension) {
  const auto slash = name.rfind('/');
  const std::size_t base = slash == std::string::npos ? 0 : slash + 1;
  const auto dot = name.find('.', base);
  if (dot == std::string::npos || dot == base || dot + 1 == name.size()) return false;
  *key = name.substr(0, dot);
  *extension = lower(name.substr(dot + 1));
  return true;
}

bool is_image_extension(const std::string& extension) {
  return extension == "jpg" || extension == "jpeg" || extension == "png" || extension == "webp";
}

bool wants_bytes(const std::string& name) {
  std::string key, extension;
  return split_member(name, &key, &extension) && (extension == "cls" || extension == "json");
}

// The folder that holds every shard.
stdfs::path common_folder(const std::vector<stdfs::path>& files) {
  stdfs::path root = files.front().parent_path();
  for (const auto& file : files) {
    const stdfs::path folder = file.parent_path();
    stdfs::path common;
    auto a = root.begin(), b = folder.begin();
    for (; a != root.end() && b != folder.end() && *a == *b; ++a, ++b) common /= *a;
    root = common;
  }
  return root;
}

// A CLIP_benchmark side file beside the shards or one folder up; "" when there is none.
std::string side_file_in(const stdfs::path& root, const std::string& name) {
  for (const stdfs::path& folder : {root, root.parent_path()}) {
    const stdfs::path path = folder / name;
    std::error_code ec;
    if (stdfs::is_regular_file(path, ec)) return path.string();
  }
  return "";
}

// Its lines (trailing blank ones dropped); "" and no lines when there is none.
std::string read_side_file(const stdfs::path& root, const std::string& name,
                           std::vector<std::string>* lines) {
  const std::string path = side_file_in(root, name);
  if (path.empty()) return path;
  std::ifstream in(path);
  if (!in) MLL_THROW(IoError, path, ": cannot open");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines->push_back(line);
  }
  while (!lines->empty() && trim(lines->back()).empty()) lines->pop_back();
  return path;
}

std::vector<stdfs::path> absolute_paths(const std::vector<std::string>& files) {
  std::vector<stdfs::path> out;
  for (const auto& file : files) out.push_back(stdfs::absolute(file).lexically_normal());
  return out;
}

// The samples of one shard, in archive order of their first member.
void scan_one(const std::string& shown, const std::string& relative, const std::string& full,
              std::vector<Sample>& samples) {
  const auto members = list_members(full, wants_bytes);
  std::map<std::string, std::size_t> by_key;
  const std::size_t first = samples.size();
  for (const auto& member : members) {
    std::string key, extension;
    if (!split_member(member.name, &key, &extension)) continue;  // no extension: not a sample part
    auto [it, inserted] = by_key.emplace(key, samples.size());
    if (inserted) {
      Sample sample;
      sample.key = key;
      sample.where = cat(shown, ": sample ", key);
      samples.push_back(std::move(sample));
    }
    Sample& sample = samples[it->second];
    if (is_image_extension(extension)) {
      if (!sample.image.empty()) {
        MLL_THROW(DataError, sample.where, ": two image members (", member.name,
                  " and an earlier one); a sample holds one image");
      }
      if (member.size == 0) MLL_THROW(DataError, shown, ": member ", member.name, " is empty");
      sample.image = member_ref(relative, member.offset, member.name);
      sample.image_size = member.size;
    } else if (extension == "cls") {
      sample.cls = trim(member.bytes);
    } else if (extension == "json") {
      sample.json = member.bytes;
    }
  }
  for (std::size_t i = first; i < samples.size(); ++i) {
    if (samples[i].image.empty()) {
      MLL_THROW(DataError, samples[i].where, ": no image member (expected ", samples[i].key,
                ".jpg, .jpeg or .png)");
    }
  }
}

}  // namespace

std::vector<std::string> expand_shard_spec(const std::string& spec) {
  std::error_code ec;
  if (spec.find_first_of("{}") == std::string::npos) {
    if (stdfs::is_directory(spec, ec)) {
      std::vector<std::string> files;
      for (stdfs::directory_iterator it(spec, ec); !ec && it != stdfs::directory_iterator();
           it.increment(ec)) {
        std::error_code entry_ec;
        if (is_shard_name(it->path()) && it->is_regular_file(entry_ec)) {
          files.push_back(it->path().string());
        }
      }
      if (ec) MLL_THROW(IoError, spec, ": cannot list shard folder: ", ec.message());
      if (files.empty()) MLL_THROW(DataError, spec, ": no .tar shards in this folder");
      std::sort(files.begin(), files.end());
      return files;
    }
    if (!stdfs::exists(spec, ec)) MLL_THROW(DataError, spec, ": no such shard file or folder");
    return {spec};
  }
  auto files = expand_braces(spec, spec);
  for (const auto& file : files) {
    if (!stdfs::is_regular_file(file, ec)) {
      MLL_THROW(DataError, spec, ": shard ", file, " does not exist");
    }
  }
  return files;
}

std::string find_side_file(const std::string& spec, const std::string& name) {
  return side_file_in(common_folder(absolute_paths(expand_shard_spec(spec))), name);
}

Shards scan_shards(const std::string& spec) {
  Shards shards;
  shards.spec = spec;
  const auto shown = expand_shard_spec(spec);
  const auto full = absolute_paths(shown);
  const stdfs::path root = common_folder(full);
  shards.root = root.string();
  for (std::size_t s = 0; s < shown.size(); ++s) {
    const std::string relative = full[s].lexically_relative(root).generic_string();
    shards.files.push_back(relative);
    scan_one(shown[s], relative, full[s].string(), shards.samples);
  }
  if (shards.samples.empty()) {
    MLL_THROW(DataError, spec, ": no samples in ", shown.size(), " shard(s)");
  }
  shards.classnames_path = read_side_file(root, "classnames.txt", &shards.classnames);
  shards.templates_path =
      read_side_file(root, "zeroshot_classification_templates.txt", &shards.templates);
  return shards;
}

SampleClass sample_class(const Sample& sample, const Shards& shards,
                         const std::string& json_field) {
  SampleClass out;
  if (!sample.cls.empty()) {
    if (!all_digits(sample.cls) || sample.cls.size() > 18) {
      out.name = sample.cls;
      return out;
    }
    out.index = std::stoll(sample.cls);
  } else if (!sample.json.empty() && !json_field.empty()) {
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(sample.json);
    } catch (const nlohmann::json::exception& e) {
      MLL_THROW(DataError, sample.where, ": .json does not parse: ", e.what());
    }
    if (!doc.is_object() || !doc.contains(json_field) || doc[json_field].is_null()) return out;
    const auto& value = doc[json_field];
    if (value.is_number_integer() && value.get<std::int64_t>() >= 0) {
      out.index = value.get<std::int64_t>();
    } else if (value.is_string()) {
      out.name = value.get<std::string>();
      return out;
    } else {
      MLL_THROW(DataError, sample.where, ": .json field '", json_field,
                "' is neither a class index nor a class name");
    }
  } else {
    return out;
  }
  if (!shards.classnames.empty()) {
    if (*out.index >= static_cast<std::int64_t>(shards.classnames.size())) {
      MLL_THROW(DataError, sample.where, ": class index ", *out.index, " is outside ",
                shards.classnames_path, " (", shards.classnames.size(), " classes)");
    }
    out.name = trim(shards.classnames[static_cast<std::size_t>(*out.index)]);
  }
  return out;
}

}  // namespace mll::archive
