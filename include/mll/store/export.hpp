// Exporting a store's embeddings as .npy files plus CSV metadata, for tools that read numpy
// arrays (faiss, clip-retrieval, a notebook): docs/store-format.md "Export". The store stays the
// source of truth; an export is a copy. Nothing here is collective.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mll/store/store.hpp"

namespace mll::store {

enum class NpyType { kFloat16, kFloat32 };

// "float16" / "float32" (also "f2"/"f4"). Throws UsageError for anything else.
NpyType parse_npy_type(const std::string& text);

// A .npy file (format version 1.0) of a C-order rows x cols matrix, written row block by row
// block so that a model's whole table never sits in memory twice. The file appears under its
// name only when complete (temporary file + rename).
class NpyWriter {
 public:
  // Throws IoError when the temporary file cannot be created.
  NpyWriter(std::string path, NpyType type, std::int64_t rows, std::int64_t cols);
  ~NpyWriter();  // removes the temporary file unless commit() was reached
  NpyWriter(const NpyWriter&) = delete;
  NpyWriter& operator=(const NpyWriter&) = delete;

  // Appends `count` rows of cols floats. Throws InternalError past the declared rows, IoError.
  void append(const float* rows, std::int64_t count);
  // Throws InternalError when fewer rows than declared were appended, IoError.
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The header of a .npy file (magic, version 1.0, header length, the dict, padding to 64 bytes).
std::string npy_header(NpyType type, std::int64_t rows, std::int64_t cols);

struct ExportOptions {
  std::vector<std::string> models;  // empty: every done model
  NpyType type = NpyType::kFloat32;
  bool force = false;         // replace existing files
  std::int64_t block = 8192;  // rows per read
};

struct ExportResult {
  std::vector<std::string> models;
  std::vector<std::string> files;  // every file written, in order
};

// Writes to `dir` (created): images.csv (row,path,nodes), captions.csv (row,caption,nodes),
// export.json (what was exported from which store) and per model <id>/images.npy
// (probe images x d) and <id>/captions.npy (captions x d). Throws UsageError for an unknown model
// or one that is not done, or for files that exist without `force` (checked before anything is
// written); DataError for damaged store files; IoError when writing fails.
ExportResult export_npy(const Store& store, const std::string& dir, const ExportOptions& options);

}  // namespace mll::store
