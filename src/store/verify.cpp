// Store::verify and the checks it shares with crash repair: every invariant of
// docs/store-format.md, checked against the files on disk rather than the in-memory state.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <set>
#include <tuple>

#include "mll/core/error.hpp"
#include "mll/core/model_id.hpp"
#include "mll/h5/h5.hpp"
#include "mll/store/half.hpp"
#include "store_impl.hpp"

namespace mll::store {
namespace stdfs = std::filesystem;

namespace {

std::uint64_t u64(std::int64_t v) { return static_cast<std::uint64_t>(v); }

// Reads a float16 matrix in blocks and checks its rows; returns the first problem or "".
std::string check_matrix_values(const h5::Dataset& data, std::int64_t rows, std::int64_t dim) {
  for (std::int64_t b = 0; b < rows; b += kCopyBlockRows) {
    const std::int64_t e = std::min(rows, b + kCopyBlockRows);
    const auto bits = data.read_float16_block({u64(b), 0}, {u64(e - b), u64(dim)});
    std::string problem = check_rows(bits.data(), e - b, dim, b);
    if (!problem.empty()) return problem;
  }
  return {};
}

std::vector<std::string> sorted_entries(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  if (!stdfs::is_directory(dir, ec)) return names;
  for (const auto& entry : stdfs::directory_iterator(dir, ec)) {
    names.push_back(entry.path().filename().string());
  }
  if (ec) MLL_THROW(IoError, dir, ": cannot list: ", ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

std::string check_rows(const std::uint16_t* bits, std::int64_t rows, std::int64_t dim,
                       std::int64_t first_row) {
  for (std::int64_t i = 0; i < rows; ++i) {
    double sum = 0;
    for (std::int64_t j = 0; j < dim; ++j) {
      const float v = half_to_float(bits[i * dim + j]);
      if (!std::isfinite(v)) return cat("row ", first_row + i, " has a non-finite value");
      sum += static_cast<double>(v) * v;
    }
    const double norm = std::sqrt(sum);
    // float16 keeps ~3 decimal digits: 1e-2 separates "normalised" from "not normalised".
    if (std::abs(norm - 1.0) > 1e-2) {
      return cat("row ", first_row + i, " has L2 norm ", norm, " (embeddings are normalised)");
    }
  }
  return {};
}

std::vector<std::string> check_model_file(const std::string& file, const ModelFileExpect& x) {
  std::vector<std::string> problems;
  auto bad = [&](auto&&... parts) { problems.push_back(cat(file, ": ", parts...)); };
  try {
    if (!x.seal_checked) check_seal(file);  // before HDF5 parses a byte of it
  } catch (const std::exception& e) {
    problems.push_back(e.what());  // "<file>: corrupt (...)"
    return problems;
  }
  try {
    const h5::File f = h5::File::open(file, h5::Access::kReadOnly);
    const h5::Group root = f.root();
    const std::int64_t schema = root.attr_int("schema_version");
    if (schema < kOldestReadableSchemaVersion || schema > kStoreSchemaVersion) {
      bad("schema version ", schema, ", expected ", kOldestReadableSchemaVersion, " to ",
          kStoreSchemaVersion);
      return problems;
    }
    if (root.attr_string("model_id") != x.id) bad("model_id is not ", x.id);
    if (root.attr_string("status") != "done") bad("status is not done");
    if (root.attr_string("model_sha256") != x.model_sha256) {
      bad("model_sha256 differs from the index record");
    }
    for (const char* name : {"sidecar_json", "config_json", "mll_version", "started_utc",
                             "finished_utc", "graph_hash", "probe_hash"}) {
      root.attr_string(name);  // throws DataError when missing
    }
    if (x.exact && root.attr_string("graph_hash") != x.graph_hash) {
      bad("graph_hash differs from the index's graph");
    }
    if (x.exact && root.attr_string("probe_hash") != x.probe_hash) {
      bad("probe_hash differs from the index's probe set");
    }
    const double scale = root.attr_double("logit_scale");
    if (!std::isfinite(scale) || scale <= 0) bad("logit_scale ", scale, " is not positive");
    const std::int64_t dim = root.attr_int("dim");
    if (dim <= 0) {
      bad("dim ", dim);
      return problems;
    }
    for (const auto& [name, rows] :
         {std::pair<const char*, std::int64_t>{"text_embeddings", x.text_rows},
          {"image_embeddings", x.image_rows}}) {
      const h5::Dataset data = root.open_dataset(name);
      const h5::Dims dims = data.dims();
      if (!data.is_float16()) bad(name, " is not float16");
      const bool rows_ok =
          dims.size() == 2 && (x.exact ? static_cast<std::int64_t>(dims[0]) == rows
                                       : static_cast<std::int64_t>(dims[0]) <= rows);
      if (!rows_ok || dims.size() != 2 || dims[1] != u64(dim)) {
        bad(name, " has shape (", dims.empty() ? 0 : dims[0], ", ", dims.size() > 1 ? dims[1] : 0,
            "), expected (", x.exact ? "" : "<= ", rows, ", ", dim, ")");
        continue;
      }
      if (x.check_values && data.is_float16()) {
        const std::string problem =
            check_matrix_values(data, static_cast<std::int64_t>(dims[0]), dim);
        if (!problem.empty()) bad(name, ": ", problem);
      }
    }
    const h5::Group labels = root.open_group("labels");
    const h5::Dims top1 = labels.dims("node_top1");
    const h5::Dims confusion = labels.dims("node_confusion");
    const h5::Dims subtree = labels.dims("subtree_top1");
    if (x.exact && (top1 != h5::Dims{u64(x.nodes)} || subtree != h5::Dims{u64(x.nodes)} ||
                    confusion != h5::Dims{u64(x.nodes), 3})) {
      bad("labels do not have one row per graph node (", x.nodes, ")");
    }
  } catch (const std::exception& e) {
    bad(e.what());
  }
  return problems;
}

VerifyReport Store::Impl::verify() const {
  VerifyReport report;
  auto bad = [&](auto&&... parts) { report.violations.push_back(cat(parts...)); };
  // A fresh view of the files: the index on disk may differ from this object's.
  Impl s;
  s.path = path;
  s.dir = dir;
  try {
    read_index(s);
  } catch (const std::exception& e) {
    bad(e.what());
    return report;
  }

  // Links in the index.
  std::set<std::string> linked;
  try {
    check_seal(s.path);
    const h5::File index = h5::File::open(s.path, h5::Access::kReadOnly);
    const h5::Group models = index.root().open_group("models");
    const std::string dir_name = base_name(s.dir);
    for (const auto& name : models.list()) {
      linked.insert(name);
      const ModelRecord* r = s.find(name);
      if (r == nullptr || r->finished_utc.empty()) {
        bad(s.path, ":/models/", name, ": link to a model that is not finished");
        continue;
      }
      if (!models.is_external_link(name)) {
        bad(s.path, ":/models/", name, ": not an external link");
        continue;
      }
      const auto target = models.external_link(name);
      const std::string renamed_from = base_name(stdfs::path(target.file).parent_path().string());
      if (target.path == "/" && base_name(target.file) == model_file_stem(name) + ".h5" &&
          renamed_from != dir_name && renamed_from.size() > 2 &&
          renamed_from.compare(renamed_from.size() - 2, 2, ".d") == 0) {
        // The store was moved under another name: mll reads model files from the index's own
        // folder, and a writer open rewrites the links (for h5py and h5dump).
        report.notes.push_back(s.path + ":/models/" + name + ": links into " + renamed_from +
                               " (the store's old name); a writer open points it at " + dir_name);
        continue;
      }
      const std::string expected = dir_name + "/" + model_file_stem(name) + ".h5";
      if (target.file != expected || target.path != "/") {
        bad(s.path, ":/models/", name, ": links to ", target.file, ":", target.path, ", expected ",
            expected, ":/");
      } else if (!stdfs::exists(s.model_file(name))) {  // not followed: HDF5 would parse it
        bad(s.path, ":/models/", name, ": link does not resolve");
      }
    }
  } catch (const std::exception& e) {
    bad(e.what());
  }

  // Each registered model: record, file, link, parts.
  for (const auto& r : s.records) {
    const std::string file = s.model_file(r.id);
    const bool has_file = stdfs::exists(file);
    if (r.status == ModelStatus::kFailed && r.message.empty()) {
      bad("model ", r.id, ": failed without a message");
    }
    Coverage c;
    if (!r.finished_utc.empty()) {
      if (!linked.count(r.id)) bad(s.path, ":/models/", r.id, ": link missing");
      if (!has_file) {
        bad(file, ": missing (model ", r.id, " is recorded as finished)");
      } else {
        ModelFileExpect x = complete_expect(s, r);
        x.exact = r.status == ModelStatus::kDone;
        x.check_values = true;
        const auto problems = check_model_file(file, x);
        for (const auto& p : problems) report.violations.push_back(p);
        // A file whose seal does not hold is never parsed (check_model_file stopped at it).
        const bool corrupt =
            !problems.empty() && problems.front().find(": corrupt (") != std::string::npos;
        if (!corrupt) try {
            const h5::File f = h5::File::open(file, h5::Access::kReadOnly);
            c.finished_text = static_cast<std::int64_t>(f.root().dims("text_embeddings").at(0));
            c.finished_images = static_cast<std::int64_t>(f.root().dims("image_embeddings").at(0));
            c.dim = f.root().attr_int("dim");
          } catch (const std::exception&) {
            // already reported by check_model_file
          }
      }
    } else if (has_file) {
      // A writer killed between renaming the finished file into place and rewriting the index
      // leaves exactly this; the next writer adopts the file. Only a damaged file is a violation.
      ModelFileExpect x = complete_expect(s, r);
      x.exact = true;
      x.check_values = true;
      auto problems = check_model_file(file, x);
      if (problems.empty()) {
        report.notes.push_back(file +
                               ": finished, not yet recorded in the index (the next writer "
                               "adopts it)");
      } else {
        for (auto& p : problems) report.violations.push_back(std::move(p));
      }
    }
    const std::string folder = s.parts_dir(r.id);
    if (!stdfs::exists(folder)) continue;
    if (r.status == ModelStatus::kDone) {
      // Left by a writer killed between recording the model as done and deleting its parts.
      report.notes.push_back(folder + ": parts of a finished model (a writer open removes them)");
      continue;
    }
    std::vector<Part> parts;
    for (const auto& name : sorted_entries(folder)) {
      const std::string full = folder + "/" + name;
      if (is_temp_name(name)) {
        report.notes.push_back(
            full + ": temporary file of an interrupted write (a writer open removes it)");
        continue;
      }
      auto part = parse_part_name(name);
      if (!part) {
        bad(full, ": stray file");
        continue;
      }
      part->file = full;
      parts.push_back(*part);
    }
    std::sort(parts.begin(), parts.end(), [](const Part& a, const Part& b) {
      return std::tie(a.kind, a.begin) < std::tie(b.kind, b.begin);
    });
    std::int64_t text_end = c.finished_text, image_end = c.finished_images;
    for (const Part& p : parts) {
      std::int64_t& covered = p.kind == UnitKind::kText ? text_end : image_end;
      if (p.end > s.total(p.kind)) {
        bad(p.file, ": beyond the ", s.total(p.kind), " ", to_string(p.kind), " rows");
      }
      if (p.begin < covered) bad(p.file, ": overlaps rows stored elsewhere");
      covered = std::max(covered, p.end);
      try {
        check_seal(p.file);
        const h5::File f = h5::File::open(p.file, h5::Access::kReadOnly);
        const h5::Group root = f.root();
        const std::int64_t dim = root.attr_int("dim");
        if (root.attr_string("kind") != to_string(p.kind) || root.attr_int("begin") != p.begin ||
            root.attr_int("end") != p.end) {
          bad(p.file, ": attributes do not match the file name");
        }
        if (root.attr_string("model_sha256") != r.model_sha256) {
          bad(p.file, ": model_sha256 differs from the index record");
        }
        if (c.dim >= 0 && dim != c.dim) bad(p.file, ": dim ", dim, ", other rows have ", c.dim);
        if (c.dim < 0) c.dim = dim;
        const h5::Dataset rows = root.open_dataset("rows");
        if (!rows.is_float16() || rows.dims() != h5::Dims{u64(p.end - p.begin), u64(dim)}) {
          bad(p.file, ": rows are not a (", p.end - p.begin, ", ", dim, ") float16 matrix");
        } else {
          const std::string problem = check_matrix_values(rows, p.end - p.begin, dim);
          if (!problem.empty()) bad(p.file, ": ", problem);
        }
      } catch (const std::exception& e) {
        bad(p.file, ": ", e.what());
      }
    }
  }

  // Files in the store directory that belong to no registered model.
  try {
    for (const auto& name : sorted_entries(s.dir)) {
      const std::string full = s.dir + "/" + name;
      if (name == "selections" && stdfs::is_directory(full)) continue;  // mll select's outputs
      std::optional<std::string> decoded;
      const bool is_dir = stdfs::is_directory(full);
      if (!is_dir && name.size() > 3 && name.compare(name.size() - 3, 3, ".h5") == 0) {
        decoded = model_id_from_file_stem(name.substr(0, name.size() - 3));
      } else if (is_dir && name.size() > 6 && name.compare(name.size() - 6, 6, ".parts") == 0) {
        decoded = model_id_from_file_stem(name.substr(0, name.size() - 6));
      }
      const std::string id = decoded.value_or(std::string());
      if (is_temp_name(name)) {
        report.notes.push_back(
            full + ": temporary file of an interrupted write (a writer open removes it)");
      } else if (id.empty()) {
        bad(full, ": stray file");
      } else if (s.find(id) == nullptr && s.was_removed(id)) {
        // Left by a writer killed while removing a model (index rewritten, files not yet gone).
        report.notes.push_back(full + ": of removed model " + id + " (a writer open removes it)");
      } else if (s.find(id) == nullptr) {
        report.notes.push_back(full + ": of model " + id +
                               ", neither registered nor removed (a writer open adopts it when "
                               "it fits the index, else moves it to " +
                               s.path + ".quarantine/)");
      }
    }
    const std::string parent = stdfs::path(s.path).parent_path().string();
    const std::string prefix = base_name(s.path) + ".tmp.";
    for (const auto& name : sorted_entries(parent.empty() ? "." : parent)) {
      if (name.rfind(prefix, 0) == 0 && is_temp_name(name)) {
        report.notes.push_back(
            name + ": temporary index of an interrupted write (a writer open removes it)");
      }
    }
  } catch (const std::exception& e) {
    bad(e.what());
  }
  return report;
}

}  // namespace mll::store
