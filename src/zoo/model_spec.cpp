#include "mll/zoo/model_spec.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/core/model_id.hpp"

namespace mll::zoo {
namespace stdfs = std::filesystem;
using nlohmann::json;

namespace {

std::string resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || stdfs::path(path).is_absolute() || base_dir.empty()) return path;
  return (stdfs::path(base_dir) / path).lexically_normal().string();
}

std::string dir_of(const std::string& path) { return stdfs::path(path).parent_path().string(); }

// Reads fields of one JSON object, turning every problem into "<origin>: field 'x': ...".
class Reader {
 public:
  Reader(const json& object, std::string origin, std::string prefix)
      : object_(object), origin_(std::move(origin)), prefix_(std::move(prefix)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    MLL_THROW(DataError, origin_, ": field '", prefix_, field, "': ", what);
  }

  const std::string& origin() const noexcept { return origin_; }

  const json* find(const std::string& field) const {
    const auto it = object_.find(field);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }

  const json& need(const std::string& field) const {
    const json* value = find(field);
    if (value == nullptr) fail(field, "missing");
    return *value;
  }

  std::string string(const std::string& field) const { return as_string(field, need(field)); }

  std::string string_or(const std::string& field, const std::string& fallback) const {
    const json* value = find(field);
    return value ? as_string(field, *value) : fallback;
  }

  std::string one_of(const std::string& field, const std::vector<std::string>& allowed,
                     const std::optional<std::string>& fallback = std::nullopt) const {
    const std::string value = fallback && !find(field) ? *fallback : string(field);
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + ("'" + a + "'");
      fail(field, cat("unknown value '", value, "' (expected one of ", list, ")"));
    }
    return value;
  }

  std::int64_t integer(const std::string& field, std::int64_t lo, std::int64_t hi) const {
    return as_integer(field, need(field), lo, hi);
  }

  std::optional<std::int64_t> opt_integer(const std::string& field, std::int64_t lo,
                                          std::int64_t hi) const {
    const json* value = find(field);
    if (!value) return std::nullopt;
    return as_integer(field, *value, lo, hi);
  }

  double number(const std::string& field, double lo, double hi, bool lo_open) const {
    return as_number(field, need(field), lo, hi, lo_open);
  }

  std::optional<double> opt_number(const std::string& field, double lo, double hi) const {
    const json* value = find(field);
    if (!value) return std::nullopt;
    return as_number(field, *value, lo, hi, false);
  }

  std::array<float, 3> triple(const std::string& field, double lo, double hi, bool lo_open) const {
    const json& value = need(field);
    if (!value.is_array() || value.size() != 3) fail(field, "must be an array of 3 numbers");
    std::array<float, 3> out{};
    for (std::size_t i = 0; i < 3; ++i) {
      out[i] = static_cast<float>(as_number(cat(field, "[", i, "]"), value[i], lo, hi, lo_open));
    }
    return out;
  }

 private:
  std::string as_string(const std::string& field, const json& value) const {
    if (!value.is_string()) fail(field, cat("must be a string, not ", value.type_name()));
    return value.get<std::string>();
  }

  std::int64_t as_integer(const std::string& field, const json& value, std::int64_t lo,
                          std::int64_t hi) const {
    if (!value.is_number_integer()) {
      fail(field, cat("must be an integer, not ", value.dump()));
    }
    const std::int64_t v = value.get<std::int64_t>();
    if (value.is_number_unsigned() && value.get<std::uint64_t>() > static_cast<std::uint64_t>(hi)) {
      fail(field, cat(value.dump(), " is out of range [", lo, ", ", hi, "]"));
    }
    if (v < lo || v > hi) fail(field, cat(v, " is out of range [", lo, ", ", hi, "]"));
    return v;
  }

  double as_number(const std::string& field, const json& value, double lo, double hi,
                   bool lo_open) const {
    if (!value.is_number()) fail(field, cat("must be a number, not ", value.type_name()));
    const double v = value.get<double>();
    if (!std::isfinite(v) || v > hi || v < lo || (lo_open && v == lo)) {
      fail(field, cat(v, " is out of range ", lo_open ? "(" : "[", lo, ", ", hi, "]"));
    }
    return v;
  }

  const json& object_;
  std::string origin_;
  std::string prefix_;
};

// Rows of one embedding table: a non-empty array of equally long arrays of finite numbers, each
// row of (nearly) unit norm, as the exporter writes them.
std::vector<std::vector<float>> embedding_rows(const Reader& r, const std::string& field) {
  const json& value = r.need(field);
  if (!value.is_array() || value.empty()) r.fail(field, "must be a non-empty array of rows");
  std::vector<std::vector<float>> rows;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const json& row = value[i];
    if (!row.is_array() || row.empty())
      r.fail(cat(field, "[", i, "]"), "must be an array of numbers");
    if (!rows.empty() && row.size() != rows.front().size()) {
      r.fail(cat(field, "[", i, "]"),
             cat("has ", row.size(), " values, row 0 has ", rows.front().size()));
    }
    std::vector<float> out;
    out.reserve(row.size());
    double norm = 0.0;
    for (const json& v : row) {
      if (!v.is_number() || !std::isfinite(v.get<double>())) {
        r.fail(cat(field, "[", i, "]"), "must hold finite numbers only");
      }
      out.push_back(v.get<float>());
      norm += v.get<double>() * v.get<double>();
    }
    if (std::abs(std::sqrt(norm) - 1.0) > 1e-3) {
      r.fail(cat(field, "[", i, "]"),
             cat("has norm ", std::sqrt(norm), ", not 1 (rows are L2-normalised)"));
    }
    rows.push_back(std::move(out));
  }
  return rows;
}

std::optional<ParityReference> parity_reference(const Reader& sidecar, const json& root) {
  const auto it = root.find("reference");
  if (it == root.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) sidecar.fail("reference", "must be an object");
  const Reader r(*it, sidecar.origin(), "reference.");
  ParityReference ref;
  ref.set = r.string("set");
  if (ref.set.empty() || ref.set.find_first_of("/\\") != std::string::npos ||
      ref.set.front() == '.') {
    r.fail("set", cat("'", ref.set, "' is not a parity set name"));
  }
  ref.image_embeddings = embedding_rows(r, "image_embeddings");
  ref.text_embeddings = embedding_rows(r, "text_embeddings");
  if (ref.image_embeddings.front().size() != ref.text_embeddings.front().size()) {
    r.fail("text_embeddings", cat("rows have ", ref.text_embeddings.front().size(),
                                  " values, image rows ", ref.image_embeddings.front().size()));
  }
  ref.made_with = r.string_or("made_with", "");
  return ref;
}

json parse_json(const std::string& text, const std::string& origin) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    MLL_THROW(DataError, origin, ": not valid JSON: ", e.what());
  }
}

void write_text_atomically(const std::string& path, const std::string& text) {
  fs::AtomicOutput out(path);
  {
    std::ofstream file(out.temp_path(), std::ios::binary | std::ios::trunc);
    if (!file) MLL_THROW(IoError, path, ": cannot open for writing");
    file << text;
    file.flush();
    if (!file) MLL_THROW(IoError, path, ": write failed");
  }
  out.commit();
}

json to_json(const ModelSpec& spec) {
  json j;
  j["format_version"] = kSidecarVersion;
  j["id"] = spec.id;
  j["model"] = spec.model_file;
  j["image_size"] = spec.image_size;
  j["resize_mode"] = spec.resize_mode;
  j["crop"] = spec.crop;
  j["interpolation"] = spec.interpolation;
  j["mean"] = {spec.mean[0], spec.mean[1], spec.mean[2]};
  j["std"] = {spec.stddev[0], spec.stddev[1], spec.stddev[2]};
  json tok;
  tok["kind"] = spec.tokenizer.kind;
  tok["context_length"] = spec.tokenizer.context_length;
  if (!spec.tokenizer.vocab.empty()) tok["vocab"] = spec.tokenizer.vocab;
  if (!spec.tokenizer.merges.empty()) tok["merges"] = spec.tokenizer.merges;
  j["tokenizer"] = tok;
  j["logit_scale"] = spec.logit_scale;
  if (spec.imagenet_top1) j["imagenet_top1"] = *spec.imagenet_top1;
  j["params"] = spec.params;
  j["gflops_per_image"] = spec.gflops_per_image;
  if (spec.embed_dim) j["embed_dim"] = *spec.embed_dim;
  if (spec.reference) {
    json ref;
    ref["set"] = spec.reference->set;
    ref["image_embeddings"] = spec.reference->image_embeddings;
    ref["text_embeddings"] = spec.reference->text_embeddings;
    if (!spec.reference->made_with.empty()) ref["made_with"] = spec.reference->made_with;
    j["reference"] = ref;
  }
  return j;
}

}  // namespace

std::string ModelSpec::model_path() const { return resolve(base_dir, model_file); }

std::string ModelSpec::vocab_path() const { return resolve(base_dir, tokenizer.vocab); }

std::string ModelSpec::merges_path() const { return resolve(base_dir, tokenizer.merges); }

ModelSpec parse_sidecar(const std::string& json_text, const std::string& origin,
                        const std::string& base_dir) {
  const json root = parse_json(json_text, origin);
  if (!root.is_object()) MLL_THROW(DataError, origin, ": a sidecar must be a JSON object");
  const Reader r(root, origin, "");

  ModelSpec spec;
  spec.base_dir = base_dir;
  const auto version = r.opt_integer("format_version", 1, 1000000);
  if (version && *version > kSidecarVersion) {
    r.fail("format_version",
           cat(*version, " is newer than this mll reads (", kSidecarVersion, "); upgrade mll"));
  }
  spec.id = r.string("id");
  if (const std::string problem = model_id_problem(spec.id); !problem.empty())
    r.fail("id", problem);
  spec.model_file = r.string("model");
  if (spec.model_file.empty()) r.fail("model", "is empty");
  spec.image_size = static_cast<int>(r.integer("image_size", 1, 8192));
  spec.resize_mode = r.one_of("resize_mode", {"shortest", "squash"});
  spec.crop = r.one_of("crop", {"center"}, std::string("center"));
  spec.interpolation = r.one_of("interpolation", {"bicubic", "bilinear"});
  spec.mean = r.triple("mean", -10.0, 10.0, false);
  spec.stddev = r.triple("std", 0.0, 10.0, true);

  const json& tok = r.need("tokenizer");
  if (!tok.is_object()) r.fail("tokenizer", cat("must be an object, not ", tok.type_name()));
  const Reader t(tok, origin, "tokenizer.");
  spec.tokenizer.kind = t.one_of(
      "kind", std::vector<std::string>(std::begin(kTokenizerKinds), std::end(kTokenizerKinds)));
  spec.tokenizer.context_length = static_cast<int>(t.integer("context_length", 2, 65536));
  spec.tokenizer.vocab = t.string_or("vocab", "");
  spec.tokenizer.merges = t.string_or("merges", "");

  spec.logit_scale = r.number("logit_scale", 0.0, 1e6, true);
  spec.imagenet_top1 = r.opt_number("imagenet_top1", 0.0, 1.0);
  spec.params = r.integer("params", 1, std::int64_t{1} << 50);
  spec.gflops_per_image = r.number("gflops_per_image", 0.0, 1e9, true);
  if (const auto dim = r.opt_integer("embed_dim", 1, 1 << 20)) {
    spec.embed_dim = static_cast<int>(*dim);
  }
  spec.reference = parity_reference(r, root);
  if (spec.reference && spec.embed_dim &&
      static_cast<int>(spec.reference->image_embeddings.front().size()) != *spec.embed_dim) {
    r.fail("reference", cat("rows have ", spec.reference->image_embeddings.front().size(),
                            " values, embed_dim is ", *spec.embed_dim));
  }
  return spec;
}

ModelSpec load_sidecar(const std::string& path) {
  fs::require_input_file(path, "model sidecar");
  return parse_sidecar(fs::read_file(path), path, dir_of(path));
}

std::string sidecar_json(const ModelSpec& spec) {
  std::string text = to_json(spec).dump(2) + "\n";
  try {
    parse_sidecar(text, "sidecar of '" + spec.id + "'", spec.base_dir);
  } catch (const DataError& e) {
    throw UsageError(cat("refusing to write an invalid sidecar: ", e.what()), __FILE__, __LINE__);
  }
  return text;
}

void save_sidecar(const ModelSpec& spec, const std::string& path) {
  write_text_atomically(path, sidecar_json(spec));
}

// --- manifest ---

ZooManifest::ZooManifest(std::string path) : path_(std::move(path)) {}

ZooManifest ZooManifest::load(const std::string& path) {
  fs::require_input_file(path, "zoo manifest");
  const json root = parse_json(fs::read_file(path), path);
  if (!root.is_object()) MLL_THROW(DataError, path, ": a zoo manifest must be a JSON object");
  const Reader r(root, path, "");
  const json& models = r.need("models");
  if (!models.is_array()) r.fail("models", "must be an array");
  ZooManifest manifest(path);
  for (std::size_t i = 0; i < models.size(); ++i) {
    const std::string prefix = cat("models[", i, "].");
    if (!models[i].is_object()) {
      MLL_THROW(DataError, path, ": field 'models[", i, "]': must be an object");
    }
    const Reader m(models[i], path, prefix);
    ZooEntry entry{m.string("id"), m.string("sidecar")};
    if (const std::string problem = model_id_problem(entry.id); !problem.empty())
      m.fail("id", problem);
    if (entry.sidecar.empty()) m.fail("sidecar", "is empty");
    if (manifest.contains(entry.id)) {
      MLL_THROW(DataError, path, ": duplicate model id '", entry.id, "' (models[", i, "])");
    }
    manifest.entries_.push_back(std::move(entry));
  }
  return manifest;
}

void ZooManifest::save() const {
  json models = json::array();
  for (const auto& e : entries_) models.push_back({{"id", e.id}, {"sidecar", e.sidecar}});
  write_text_atomically(path_, json{{"models", models}}.dump(2) + "\n");
}

bool ZooManifest::contains(const std::string& id) const noexcept {
  return std::any_of(entries_.begin(), entries_.end(),
                     [&](const ZooEntry& e) { return e.id == id; });
}

void ZooManifest::add(const ZooEntry& entry) {
  if (const std::string problem = model_id_problem(entry.id); !problem.empty()) {
    MLL_THROW(DataError, path_, ": model id '", entry.id, "' ", problem);
  }
  if (entry.sidecar.empty())
    MLL_THROW(DataError, path_, ": empty sidecar path for '", entry.id, "'");
  if (contains(entry.id)) {
    MLL_THROW(DataError, path_, ": duplicate model id '", entry.id, "' (already in the zoo)");
  }
  entries_.push_back(entry);
}

ZooEntry ZooManifest::add_sidecar(const std::string& sidecar_path) {
  const ModelSpec spec = load_sidecar(sidecar_path);
  std::error_code ec;
  const stdfs::path base = stdfs::absolute(dir_of(path_).empty() ? "." : dir_of(path_), ec);
  const stdfs::path target = stdfs::absolute(sidecar_path, ec);
  std::string written = target.lexically_normal().string();
  const stdfs::path rel = target.lexically_normal().lexically_relative(base.lexically_normal());
  if (!rel.empty() && *rel.begin() != "..") written = rel.string();
  ZooEntry entry{spec.id, written};
  add(entry);
  return entry;
}

bool ZooManifest::remove(const std::string& id) {
  const auto it =
      std::find_if(entries_.begin(), entries_.end(), [&](const ZooEntry& e) { return e.id == id; });
  if (it == entries_.end()) return false;
  entries_.erase(it);
  return true;
}

std::string ZooManifest::sidecar_path(const ZooEntry& entry) const {
  return resolve(dir_of(path_), entry.sidecar);
}

ModelSpec ZooManifest::load_spec(const std::string& id) const {
  const auto it =
      std::find_if(entries_.begin(), entries_.end(), [&](const ZooEntry& e) { return e.id == id; });
  if (it == entries_.end()) MLL_THROW(UsageError, path_, ": no model '", id, "' in the zoo");
  const std::string sidecar = sidecar_path(*it);
  ModelSpec spec = load_sidecar(sidecar);
  if (spec.id != id) {
    MLL_THROW(DataError, sidecar, ": declares id '", spec.id, "' but the zoo ", path_,
              " lists it as '", id, "'");
  }
  return spec;
}

std::vector<ModelSpec> ZooManifest::load_all() const {
  std::vector<ModelSpec> specs;
  specs.reserve(entries_.size());
  for (const auto& e : entries_) specs.push_back(load_spec(e.id));
  return specs;
}

}  // namespace mll::zoo
