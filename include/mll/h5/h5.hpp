// A thin RAII layer over the HDF5 C API.
//
// HighFive is not packaged by Debian, so mll carries this small layer; it is the only code that
// includes hdf5.h (the ids below are hid_t values kept as int64_t so that hdf5.h stays private).
// Every handle closes itself and never throws while closing; every failing HDF5 call becomes an
// IoError (or DataError for content that is present but wrong) whose message carries the file, the
// object path and the innermost HDF5 error description.
//
// HDF5 here is not built thread-safe: use a file from one thread at a time. Nothing in this layer
// is collective: files are opened with the default (serial) driver by a single writer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mll::h5 {

using Id = std::int64_t;  // hid_t
using Dims = std::vector<std::uint64_t>;

// Owns one HDF5 identifier of any kind and closes it with the matching H5*close call.
class Handle {
 public:
  Handle() noexcept = default;
  explicit Handle(Id id) noexcept : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(other.release()) {}
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  Id get() const noexcept { return id_; }
  bool valid() const noexcept { return id_ >= 0; }
  Id release() noexcept;
  void reset() noexcept;

 private:
  Id id_ = -1;
};

enum class Access { kReadOnly, kReadWrite };

class Group;

// A dataset of numbers, possibly chunked and extendible along its first dimension.
class Dataset {
 public:
  Dataset(Handle handle, std::string path) : handle_(std::move(handle)), path_(std::move(path)) {}

  const std::string& path() const noexcept { return path_; }
  Dims dims() const;

  // Writes `values` (row-major, count = product of `count`) at `offset`. Throws IoError.
  template <typename T>
  void write_block(const Dims& offset, const Dims& count, const T* values);
  // Reads the block at `offset` of shape `count`. Throws IoError.
  template <typename T>
  std::vector<T> read_block(const Dims& offset, const Dims& count) const;
  // Reads the whole dataset; the element type is converted by HDF5 when it differs.
  template <typename T>
  std::vector<T> read_all() const;

  // Grows an extendible dataset to `new_dims`. Throws IoError.
  void extend(const Dims& new_dims);

  // IEEE binary16 data moved as raw bits (HDF5 converts nothing, so values stay bit-exact).
  // True when the dataset's element type is a 2-byte float. Throws IoError.
  bool is_float16() const;
  // Writes / reads the block at `offset` of shape `count` of a float16 dataset. Throws DataError
  // when the dataset is not float16, IoError when HDF5 fails.
  void write_float16_block(const Dims& offset, const Dims& count, const std::uint16_t* bits);
  std::vector<std::uint16_t> read_float16_block(const Dims& offset, const Dims& count) const;

 private:
  Handle handle_;
  std::string path_;
};

// A group (also used for the file's root group). Attributes may be set on any group.
class Group {
 public:
  Group(Handle handle, std::string file, std::string path)
      : handle_(std::move(handle)), file_(std::move(file)), path_(std::move(path)) {}

  const std::string& path() const noexcept { return path_; }
  const std::string& file() const noexcept { return file_; }

  bool has(const std::string& name) const;
  Group open_group(const std::string& name) const;    // throws DataError if absent
  Group create_group(const std::string& name) const;  // throws IoError if it exists
  Group require_group(const std::string& name) const;
  std::vector<std::string> list() const;       // names of direct children, in name order
  void remove(const std::string& name) const;  // unlinks a child; throws DataError if absent

  // Contiguous (or, with `chunk`, chunked + compressed) dataset written in one call.
  template <typename T>
  void write(const std::string& name, const std::vector<T>& values, Dims dims = {}) const;
  template <typename T>
  std::vector<T> read(const std::string& name, Dims* dims = nullptr) const;

  // Variable-length UTF-8 strings (h5py reads them as str / bytes objects).
  void write_strings(const std::string& name, const std::vector<std::string>& values) const;
  std::vector<std::string> read_strings(const std::string& name) const;

  // An empty chunked dataset of T with unlimited first dimension; rows of shape `row_dims`.
  template <typename T>
  Dataset create_extendible(const std::string& name, const Dims& row_dims,
                            std::uint64_t chunk_rows) const;
  Dataset open_dataset(const std::string& name) const;  // throws DataError if absent

  // A contiguous dataset of IEEE binary16 (the type h5py reads as numpy.float16) of shape
  // `dims`, to be filled with Dataset::write_float16_block. Throws IoError.
  Dataset create_float16(const std::string& name, const Dims& dims) const;

  // An external link `name` -> `target_file`:`target_path`. A relative `target_file` is resolved
  // by HDF5 against the directory of the file holding the link, so a directory of files can be
  // moved as a whole. Throws IoError.
  void create_external_link(const std::string& name, const std::string& target_file,
                            const std::string& target_path) const;
  // The target of external link `name`; `is_external_link` never throws for a missing name.
  struct ExternalLink {
    std::string file;
    std::string path;
  };
  bool is_external_link(const std::string& name) const;
  ExternalLink external_link(const std::string& name) const;  // throws DataError if not one
  // True when `name` exists and the object it leads to can be opened (follows external links).
  bool resolves(const std::string& name) const;

  // Copies child `name` (group or dataset, recursively, with attributes) into `destination`
  // as `new_name`, possibly in another file; external links are copied as links. Throws IoError.
  void copy(const std::string& name, const Group& destination, const std::string& new_name) const;
  Dims dims(const std::string& name) const;

  bool has_attr(const std::string& name) const;
  void set_attr(const std::string& name, const std::string& value) const;
  void set_attr(const std::string& name, const char* value) const {
    set_attr(name, std::string(value));
  }
  void set_attr(const std::string& name, std::int64_t value) const;
  void set_attr(const std::string& name, double value) const;
  std::string attr_string(const std::string& name) const;  // throws DataError if absent/wrong
  std::int64_t attr_int(const std::string& name) const;
  double attr_double(const std::string& name) const;

 private:
  std::string child_path(const std::string& name) const;
  Handle handle_;
  std::string file_;
  std::string path_;
};

// An HDF5 file. Closing flushes; the destructor never throws.
class File {
 public:
  // Creates (truncating when `truncate`, else failing if it exists). Throws IoError.
  // `user_block` bytes (0, or a power of two >= 512) are reserved at the start of the file for
  // the caller; HDF5 leaves them alone.
  static File create(const std::string& path, bool truncate = false, std::size_t user_block = 0);
  // Opens an existing file. Throws DataError when it is not an HDF5 file, IoError otherwise.
  static File open(const std::string& path, Access access);

  Group root() const;
  const std::string& path() const noexcept { return path_; }
  // Flushes HDF5's buffers to the operating system. Throws IoError.
  void flush() const;
  // Closes now (rather than in the destructor), reporting a failure as IoError.
  void close();

 private:
  File(Handle handle, std::string path) : handle_(std::move(handle)), path_(std::move(path)) {}
  Handle handle_;
  std::string path_;
};

// True when `path` starts with the HDF5 signature. Never throws.
bool is_hdf5(const std::string& path) noexcept;

}  // namespace mll::h5
