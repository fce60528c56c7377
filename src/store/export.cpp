// `mll store export --format npy`: embeddings as .npy files and the rows' metadata as CSV.
#include "mll/store/export.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/core/model_id.hpp"
#include "mll/store/half.hpp"

namespace mll::store {
namespace {

namespace stdfs = std::filesystem;

// A CSV field, quoted (RFC 4180) when it holds a comma, a quote or a line break: captions and
// shard member references can.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (const char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

void write_text(const std::string& path, const std::string& text) {
  fs::AtomicOutput output(path);
  {
    std::ofstream out(output.temp_path(), std::ios::binary);
    if (!out) MLL_THROW(IoError, path, ": cannot write");
    out << text;
    out.close();
    if (!out) MLL_THROW(IoError, path, ": write failed");
  }
  output.commit();
}

// images.csv: each probe image's row, path and the wnids of the nodes it is a probe of.
std::string images_csv(const Store& store) {
  const auto& probe = store.probe();
  const auto& graph = store.graph();
  std::vector<std::string> nodes(probe.image_count());
  for (std::size_t v = 0; v < probe.node_count(); ++v) {
    for (const auto i : probe.images_of(v)) {
      auto& cell = nodes[static_cast<std::size_t>(i)];
      cell += (cell.empty() ? "" : " ") + graph.node(v).wnid;
    }
  }
  std::ostringstream csv;
  csv << "row,path,nodes\n";
  for (std::size_t i = 0; i < probe.image_count(); ++i)
    csv << i << "," << csv_field(probe.path_of(i)) << "," << nodes[i] << "\n";
  return csv.str();
}

// captions.csv: each caption row, its text and the wnids of the nodes whose caption it is.
std::string captions_csv(const Store& store) {
  const auto& captions = store.captions();
  const auto& node_caption = store.node_caption();
  const auto& graph = store.graph();
  std::vector<std::string> nodes(captions.size());
  for (std::size_t v = 0; v < node_caption.size(); ++v) {
    const auto c = node_caption[v];
    if (c < 0 || static_cast<std::size_t>(c) >= captions.size()) continue;
    auto& cell = nodes[static_cast<std::size_t>(c)];
    cell += (cell.empty() ? "" : " ") + graph.node(v).wnid;
  }
  std::ostringstream csv;
  csv << "row,caption,nodes\n";
  for (std::size_t i = 0; i < captions.size(); ++i)
    csv << i << "," << csv_field(captions[i]) << "," << nodes[i] << "\n";
  return csv.str();
}

// The models to export, each known and done. Throws UsageError naming the store.
std::vector<std::string> export_models(const Store& store, const std::vector<std::string>& asked) {
  std::vector<std::string> ids;
  if (asked.empty()) {
    for (const auto& m : store.models()) {
      if (m.status == ModelStatus::kDone) ids.push_back(m.id);
    }
    if (ids.empty()) MLL_THROW(UsageError, store.path(), ": no done model to export");
    return ids;
  }
  for (const auto& id : asked) {
    const auto record = store.find_model(id);
    if (!record) {
      std::string known;
      for (const auto& m : store.models()) known += (known.empty() ? "" : ", ") + m.id;
      MLL_THROW(UsageError, store.path(), ": no model '", id, "' (the store has ",
                known.empty() ? std::string("none") : known, ")");
    }
    if (record->status != ModelStatus::kDone) {
      MLL_THROW(UsageError, store.path(), ": model '", id, "' is ", to_string(record->status),
                ", not done: label it first (mll label)");
    }
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  return ids;
}

// Streams rows [0, rows) of one table through `read(begin, end)` into `path`.
template <typename Read>
void export_table(const std::string& path, NpyType type, std::int64_t rows, std::int64_t cols,
                  std::int64_t block, Read read) {
  NpyWriter writer(path, type, rows, cols);
  for (std::int64_t begin = 0; begin < rows; begin += block) {
    const std::int64_t end = std::min(rows, begin + block);
    const Matrix m = read(begin, end);
    MLL_CHECK(m.rows == end - begin && m.cols == cols, path, ": read ", m.rows, "x", m.cols,
              " for rows ", begin, "..", end, " of width ", cols);
    writer.append(m.values.data(), m.rows);
  }
  writer.commit();
}

}  // namespace

NpyType parse_npy_type(const std::string& text) {
  if (text == "float16" || text == "f2") return NpyType::kFloat16;
  if (text == "float32" || text == "f4") return NpyType::kFloat32;
  MLL_THROW(UsageError, "--dtype ", text, ": not float16 or float32");
}

std::string npy_header(NpyType type, std::int64_t rows, std::int64_t cols) {
  // The .npy format (numpy.lib.format, version 1.0): the magic "\x93NUMPY", version bytes 1 0,
  // a little-endian uint16 header length, then an ASCII Python dict literal padded with spaces
  // and ended by '\n' so that magic + length + dict is a multiple of 64 bytes; the data follow
  // in C order. '<' is little endian, which is what this writer stores (x86 and ARM hosts).
  std::string dict = std::string("{'descr': '") + (type == NpyType::kFloat16 ? "<f2" : "<f4") +
                     "', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                     std::to_string(cols) + "), }";
  const std::size_t prefix = 10;  // magic (6) + version (2) + length (2)
  const std::size_t total = (prefix + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - prefix - dict.size() - 1, ' ');
  dict += '\n';
  MLL_CHECK(dict.size() <= 0xffff, "npy header too long");
  std::string header = "\x93NUMPY";
  header += static_cast<char>(1);
  header += static_cast<char>(0);
  header += static_cast<char>(dict.size() & 0xff);
  header += static_cast<char>((dict.size() >> 8) & 0xff);
  return header + dict;
}

struct NpyWriter::Impl {
  fs::AtomicOutput output;
  std::ofstream out;
  NpyType type;
  std::int64_t rows, cols, written = 0;
  std::vector<std::uint16_t> halves;

  Impl(std::string path, NpyType t, std::int64_t r, std::int64_t c)
      : output(std::move(path)), type(t), rows(r), cols(c) {}
};

NpyWriter::NpyWriter(std::string path, NpyType type, std::int64_t rows, std::int64_t cols)
    : impl_(std::make_unique<Impl>(std::move(path), type, rows, cols)) {
  impl_->out.open(impl_->output.temp_path(), std::ios::binary | std::ios::trunc);
  if (!impl_->out) MLL_THROW(IoError, impl_->output.path(), ": cannot write");
  impl_->out << npy_header(type, rows, cols);
}

NpyWriter::~NpyWriter() = default;

void NpyWriter::append(const float* rows, std::int64_t count) {
  auto& s = *impl_;
  MLL_CHECK(s.written + count <= s.rows, s.output.path(), ": more rows than declared");
  const auto n = static_cast<std::size_t>(count * s.cols);
  if (s.type == NpyType::kFloat32) {
    s.out.write(reinterpret_cast<const char*>(rows), static_cast<std::streamsize>(n * 4));
  } else {
    // Stored rows are float16 already: float -> half gives back the stored bits exactly.
    s.halves.resize(n);
    for (std::size_t i = 0; i < n; ++i) s.halves[i] = float_to_half(rows[i]);
    s.out.write(reinterpret_cast<const char*>(s.halves.data()),
                static_cast<std::streamsize>(n * 2));
  }
  if (!s.out) MLL_THROW(IoError, s.output.path(), ": write failed");
  s.written += count;
}

void NpyWriter::commit() {
  auto& s = *impl_;
  MLL_CHECK(s.written == s.rows, s.output.path(), ": ", s.written, " of ", s.rows, " rows written");
  s.out.close();
  if (!s.out) MLL_THROW(IoError, s.output.path(), ": write failed");
  s.output.commit();
}

ExportResult export_npy(const Store& store, const std::string& dir, const ExportOptions& options) {
  ExportResult result;
  result.models = export_models(store, options.models);
  std::vector<std::string> files = {dir + "/images.csv", dir + "/captions.csv"};
  for (const auto& id : result.models) {
    files.push_back(dir + "/" + model_file_stem(id) + "/images.npy");
    files.push_back(dir + "/" + model_file_stem(id) + "/captions.npy");
  }
  files.push_back(dir + "/export.json");
  // Every output is checked before the first is written: a refused export changes nothing.
  if (!options.force) {
    for (const auto& f : files) {
      if (stdfs::exists(f)) MLL_THROW(UsageError, f, ": exists (pass --force to replace it)");
    }
  }
  for (const auto& id : result.models) {
    std::error_code ec;
    stdfs::create_directories(dir + "/" + model_file_stem(id), ec);
    if (ec) {
      MLL_THROW(UsageError, dir, "/", model_file_stem(id),
                ": cannot create the folder: ", ec.message());
    }
  }
  write_text(files[0], images_csv(store));
  write_text(files[1], captions_csv(store));
  const auto images = static_cast<std::int64_t>(store.probe().image_count());
  const auto captions = static_cast<std::int64_t>(store.captions().size());
  nlohmann::json manifest = {{"kind", "mll-npy-export"},
                             {"store", store.path()},
                             {"graph_hash", store.graph().content_hash()},
                             {"probe_hash", store.probe().content_hash()},
                             {"dtype", options.type == NpyType::kFloat16 ? "float16" : "float32"},
                             {"images", images},
                             {"captions", captions},
                             {"models", nlohmann::json::array()}};
  for (const auto& id : result.models) {
    const auto info = store.model_info(id);
    export_table(dir + "/" + model_file_stem(id) + "/images.npy", options.type, images, info.dim,
                 options.block, [&](std::int64_t b, std::int64_t e) {
                   return store.read_image_embeddings(id, b, e);
                 });
    const Matrix text = store.read_text_embeddings(id);
    export_table(dir + "/" + model_file_stem(id) + "/captions.npy", options.type, captions,
                 info.dim, captions, [&](std::int64_t, std::int64_t) { return text; });
    manifest["models"].push_back({{"id", id},
                                  {"folder", model_file_stem(id)},
                                  {"dim", info.dim},
                                  {"logit_scale", info.logit_scale},
                                  {"model_sha256", info.model_sha256}});
  }
  write_text(files.back(), manifest.dump(1) + "\n");
  result.files = files;
  return result;
}

}  // namespace mll::store
