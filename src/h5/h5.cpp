#include "mll/h5/h5.hpp"

#include <hdf5.h>

#include <cstring>
#include <fstream>
#include <mutex>
#include <numeric>
#include <type_traits>

#include "mll/core/error.hpp"

namespace mll::h5 {

static_assert(std::is_same_v<hid_t, Id>, "hid_t is expected to be a 64-bit integer (HDF5 >= 1.10)");

namespace {

// HDF5 prints its error stack to stderr by default; mll reports errors itself, so printing is
// switched off once, before the first call that can fail.
void silence_hdf5() {
  static std::once_flag once;
  std::call_once(once, [] {
    H5open();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  });
}

herr_t collect_error(unsigned n, const H5E_error2_t* error, void* data) {
  auto* lines = static_cast<std::vector<std::string>*>(data);
  std::string line = error->func_name ? error->func_name : "";
  if (error->desc && *error->desc) line += std::string(line.empty() ? "" : ": ") + error->desc;
  lines->push_back(line);
  (void)n;
  return 0;
}

// The HDF5 error stack condensed into one phrase: the API call that failed and the innermost
// cause (the stack in between is rarely useful to a user).
std::string hdf5_error_text() {
  std::vector<std::string> lines;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &lines);
  H5Eclear2(H5E_DEFAULT);
  if (lines.empty()) return "unknown HDF5 error";
  if (lines.size() == 1) return lines.front();
  return lines.front() + " (" + lines.back() + ")";
}

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw IoError(where + ": " + what + ": " + hdf5_error_text());
}

template <typename T>
hid_t native_type() {
  if constexpr (std::is_same_v<T, std::int8_t>) return H5T_NATIVE_INT8;
  if constexpr (std::is_same_v<T, std::uint8_t>) return H5T_NATIVE_UINT8;
  if constexpr (std::is_same_v<T, std::int16_t>) return H5T_NATIVE_INT16;
  if constexpr (std::is_same_v<T, std::uint16_t>) return H5T_NATIVE_UINT16;
  if constexpr (std::is_same_v<T, std::int32_t>) return H5T_NATIVE_INT32;
  if constexpr (std::is_same_v<T, std::uint32_t>) return H5T_NATIVE_UINT32;
  if constexpr (std::is_same_v<T, std::int64_t>) return H5T_NATIVE_INT64;
  if constexpr (std::is_same_v<T, std::uint64_t>) return H5T_NATIVE_UINT64;
  if constexpr (std::is_same_v<T, float>) return H5T_NATIVE_FLOAT;
  if constexpr (std::is_same_v<T, double>) return H5T_NATIVE_DOUBLE;
}

std::uint64_t product(const Dims& dims) {
  return std::accumulate(dims.begin(), dims.end(), std::uint64_t{1},
                         [](std::uint64_t a, std::uint64_t b) { return a * b; });
}

std::vector<hsize_t> to_hsize(const Dims& dims) { return {dims.begin(), dims.end()}; }

Handle make_space(const Dims& dims, const std::string& where) {
  const auto hdims = to_hsize(dims);
  Handle space(H5Screate_simple(static_cast<int>(hdims.size()), hdims.data(), nullptr));
  if (!space.valid()) fail(where, "cannot create dataspace");
  return space;
}

Dims space_dims(hid_t space, const std::string& where) {
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) fail(where, "cannot read dataspace rank");
  std::vector<hsize_t> hdims(static_cast<std::size_t>(rank));
  if (H5Sget_simple_extent_dims(space, hdims.data(), nullptr) < 0) {
    fail(where, "cannot read dataspace dimensions");
  }
  return {hdims.begin(), hdims.end()};
}

Handle string_type() {
  Handle type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  return type;
}

// Reads a string attribute or dataset element buffer of either variable or fixed length (files
// written by h5py may use both).
std::vector<std::string> read_string_values(hid_t object, hid_t file_type, hid_t space,
                                            std::size_t count, bool is_attribute,
                                            const std::string& where) {
  if (H5Tget_class(file_type) != H5T_STRING) {
    throw DataError(where + ": expected strings");
  }
  std::vector<std::string> out;
  out.reserve(count);
  if (H5Tis_variable_str(file_type) > 0) {
    Handle mem = string_type();
    std::vector<char*> buffer(count, nullptr);
    const herr_t rc =
        is_attribute ? H5Aread(object, mem.get(), buffer.data())
                     : H5Dread(object, mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data());
    if (rc < 0) fail(where, "cannot read strings");
    for (char* s : buffer) out.emplace_back(s ? s : "");
    H5Dvlen_reclaim(mem.get(), space, H5P_DEFAULT, buffer.data());
  } else {
    const std::size_t size = H5Tget_size(file_type);
    Handle mem(H5Tcopy(file_type));
    std::vector<char> buffer(count * size + 1, '\0');
    const herr_t rc =
        is_attribute ? H5Aread(object, mem.get(), buffer.data())
                     : H5Dread(object, mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data());
    if (rc < 0) fail(where, "cannot read strings");
    for (std::size_t i = 0; i < count; ++i) {
      const char* start = buffer.data() + i * size;
      out.emplace_back(start, strnlen(start, size));
    }
  }
  return out;
}

herr_t collect_name(hid_t, const char* name, const H5L_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->emplace_back(name);
  return 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Handle

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.release();
  }
  return *this;
}

Id Handle::release() noexcept {
  const Id id = id_;
  id_ = -1;
  return id;
}

void Handle::reset() noexcept {
  if (id_ < 0) return;
  // Close failures cannot be reported from a destructor; they are dropped from the stack so that
  // they do not leak into the next error message.
  switch (H5Iget_type(id_)) {
    case H5I_FILE:
      H5Fclose(id_);
      break;
    case H5I_GROUP:
      H5Gclose(id_);
      break;
    case H5I_DATASET:
      H5Dclose(id_);
      break;
    case H5I_DATASPACE:
      H5Sclose(id_);
      break;
    case H5I_DATATYPE:
      H5Tclose(id_);
      break;
    case H5I_ATTR:
      H5Aclose(id_);
      break;
    case H5I_GENPROP_LST:
      H5Pclose(id_);
      break;
    default:
      H5Idec_ref(id_);
      break;
  }
  H5Eclear2(H5E_DEFAULT);
  id_ = -1;
}

// ---------------------------------------------------------------------------------------------
// File

File File::create(const std::string& path, bool truncate, std::size_t user_block) {
  silence_hdf5();
  Handle creation(H5Pcreate(H5P_FILE_CREATE));
  if (!creation.valid()) fail(path, "cannot create file properties");
  if (user_block > 0 && H5Pset_userblock(creation.get(), static_cast<hsize_t>(user_block)) < 0) {
    fail(path, "cannot reserve a user block");
  }
  Handle file(H5Fcreate(path.c_str(), truncate ? H5F_ACC_TRUNC : H5F_ACC_EXCL, creation.get(),
                        H5P_DEFAULT));
  if (!file.valid()) fail(path, "cannot create HDF5 file");
  return File(std::move(file), path);
}

File File::open(const std::string& path, Access access) {
  silence_hdf5();
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) throw IoError(path + ": cannot open: " + std::strerror(errno));
  }
  if (!is_hdf5(path)) throw DataError(path + ": not an HDF5 file");
  Handle file(H5Fopen(path.c_str(), access == Access::kReadOnly ? H5F_ACC_RDONLY : H5F_ACC_RDWR,
                      H5P_DEFAULT));
  if (!file.valid()) fail(path, "cannot open HDF5 file");
  return File(std::move(file), path);
}

Group File::root() const {
  Handle group(H5Gopen2(handle_.get(), "/", H5P_DEFAULT));
  if (!group.valid()) fail(path_, "cannot open root group");
  return Group(std::move(group), path_, "/");
}

void File::flush() const {
  if (H5Fflush(handle_.get(), H5F_SCOPE_GLOBAL) < 0) fail(path_, "cannot flush");
}

void File::close() {
  if (!handle_.valid()) return;
  const Id id = handle_.release();
  // Flush first: with HDF5's default (weak) close degree the file stays open while any of its
  // objects is still open, and the caller may rename it right after close().
  const herr_t flushed = H5Fflush(id, H5F_SCOPE_GLOBAL);
  const herr_t closed = H5Fclose(id);
  if (flushed < 0 || closed < 0) fail(path_, "cannot close");
}

bool is_hdf5(const std::string& path) noexcept {
  silence_hdf5();
  const htri_t result = H5Fis_hdf5(path.c_str());
  H5Eclear2(H5E_DEFAULT);
  return result > 0;
}

// ---------------------------------------------------------------------------------------------
// Group

std::string Group::child_path(const std::string& name) const {
  return file_ + ":" + (path_ == "/" ? "/" + name : path_ + "/" + name);
}

bool Group::has(const std::string& name) const {
  const htri_t result = H5Lexists(handle_.get(), name.c_str(), H5P_DEFAULT);
  if (result < 0) fail(child_path(name), "cannot check existence");
  return result > 0;
}

Group Group::open_group(const std::string& name) const {
  if (!has(name)) throw DataError(child_path(name) + ": group not found");
  Handle group(H5Gopen2(handle_.get(), name.c_str(), H5P_DEFAULT));
  if (!group.valid()) fail(child_path(name), "cannot open group");
  return Group(std::move(group), file_, path_ == "/" ? "/" + name : path_ + "/" + name);
}

Group Group::create_group(const std::string& name) const {
  Handle group(H5Gcreate2(handle_.get(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!group.valid()) fail(child_path(name), "cannot create group");
  return Group(std::move(group), file_, path_ == "/" ? "/" + name : path_ + "/" + name);
}

Group Group::require_group(const std::string& name) const {
  return has(name) ? open_group(name) : create_group(name);
}

std::vector<std::string> Group::list() const {
  std::vector<std::string> names;
  hsize_t index = 0;
  if (H5Literate(handle_.get(), H5_INDEX_NAME, H5_ITER_INC, &index, collect_name, &names) < 0) {
    fail(file_ + ":" + path_, "cannot list group");
  }
  return names;
}

void Group::remove(const std::string& name) const {
  if (!has(name)) throw DataError(child_path(name) + ": cannot remove: not found");
  if (H5Ldelete(handle_.get(), name.c_str(), H5P_DEFAULT) < 0) {
    fail(child_path(name), "cannot remove");
  }
}

template <typename T>
void Group::write(const std::string& name, const std::vector<T>& values, Dims dims) const {
  if (dims.empty()) dims = {values.size()};
  if (product(dims) != values.size()) {
    throw InternalError(child_path(name) + ": " + std::to_string(values.size()) +
                        " values do not fill the requested shape");
  }
  Handle space = make_space(dims, child_path(name));
  Handle dataset(H5Dcreate2(handle_.get(), name.c_str(), native_type<T>(), space.get(), H5P_DEFAULT,
                            H5P_DEFAULT, H5P_DEFAULT));
  if (!dataset.valid()) fail(child_path(name), "cannot create dataset");
  if (!values.empty() &&
      H5Dwrite(dataset.get(), native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0) {
    fail(child_path(name), "cannot write dataset");
  }
}

template <typename T>
std::vector<T> Group::read(const std::string& name, Dims* dims) const {
  Dataset dataset = open_dataset(name);
  if (dims != nullptr) *dims = dataset.dims();
  return dataset.read_all<T>();
}

void Group::write_strings(const std::string& name, const std::vector<std::string>& values) const {
  Handle type = string_type();
  Handle space = make_space({values.size()}, child_path(name));
  Handle dataset(H5Dcreate2(handle_.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT,
                            H5P_DEFAULT, H5P_DEFAULT));
  if (!dataset.valid()) fail(child_path(name), "cannot create string dataset");
  std::vector<const char*> pointers;
  pointers.reserve(values.size());
  for (const auto& value : values) pointers.push_back(value.c_str());
  if (!values.empty() &&
      H5Dwrite(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()) < 0) {
    fail(child_path(name), "cannot write strings");
  }
}

std::vector<std::string> Group::read_strings(const std::string& name) const {
  if (!has(name)) throw DataError(child_path(name) + ": dataset not found");
  Handle dataset(H5Dopen2(handle_.get(), name.c_str(), H5P_DEFAULT));
  if (!dataset.valid()) fail(child_path(name), "cannot open dataset");
  Handle type(H5Dget_type(dataset.get()));
  Handle space(H5Dget_space(dataset.get()));
  const Dims dims = space_dims(space.get(), child_path(name));
  if (dims.size() != 1) throw DataError(child_path(name) + ": expected a 1-d string dataset");
  if (dims[0] == 0) return {};
  return read_string_values(dataset.get(), type.get(), space.get(), dims[0], false,
                            child_path(name));
}

template <typename T>
Dataset Group::create_extendible(const std::string& name, const Dims& row_dims,
                                 std::uint64_t chunk_rows) const {
  std::vector<hsize_t> dims{0}, max_dims{H5S_UNLIMITED},
      chunk{std::max<std::uint64_t>(1, chunk_rows)};
  for (auto d : row_dims) {
    dims.push_back(d);
    max_dims.push_back(d);
    chunk.push_back(d);
  }
  Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), max_dims.data()));
  if (!space.valid()) fail(child_path(name), "cannot create dataspace");
  Handle properties(H5Pcreate(H5P_DATASET_CREATE));
  if (H5Pset_chunk(properties.get(), static_cast<int>(chunk.size()), chunk.data()) < 0) {
    fail(child_path(name), "cannot set chunking");
  }
  Handle dataset(H5Dcreate2(handle_.get(), name.c_str(), native_type<T>(), space.get(), H5P_DEFAULT,
                            properties.get(), H5P_DEFAULT));
  if (!dataset.valid()) fail(child_path(name), "cannot create dataset");
  return Dataset(std::move(dataset), child_path(name));
}

Dataset Group::open_dataset(const std::string& name) const {
  if (!has(name)) throw DataError(child_path(name) + ": dataset not found");
  Handle dataset(H5Dopen2(handle_.get(), name.c_str(), H5P_DEFAULT));
  if (!dataset.valid()) fail(child_path(name), "cannot open dataset");
  return Dataset(std::move(dataset), child_path(name));
}

Dims Group::dims(const std::string& name) const { return open_dataset(name).dims(); }

bool Group::has_attr(const std::string& name) const {
  const htri_t result = H5Aexists(handle_.get(), name.c_str());
  if (result < 0) fail(file_ + ":" + path_ + "@" + name, "cannot check attribute");
  return result > 0;
}

namespace {

void write_attribute(hid_t object, const std::string& name, hid_t type, const void* value,
                     const std::string& where) {
  if (H5Aexists(object, name.c_str()) > 0 && H5Adelete(object, name.c_str()) < 0) {
    fail(where, "cannot replace attribute");
  }
  Handle space(H5Screate(H5S_SCALAR));
  Handle attribute(H5Acreate2(object, name.c_str(), type, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attribute.valid()) fail(where, "cannot create attribute");
  if (H5Awrite(attribute.get(), type, value) < 0) fail(where, "cannot write attribute");
}

Handle open_attribute(hid_t object, const std::string& name, const std::string& where) {
  if (H5Aexists(object, name.c_str()) <= 0) throw DataError(where + ": attribute not found");
  Handle attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT));
  if (!attribute.valid()) fail(where, "cannot open attribute");
  return attribute;
}

template <typename T>
T read_numeric_attribute(hid_t object, const std::string& name, H5T_class_t expected,
                         const std::string& where) {
  Handle attribute = open_attribute(object, name, where);
  Handle type(H5Aget_type(attribute.get()));
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
    throw DataError(where + ": attribute is not a number");
  }
  if (expected == H5T_INTEGER && cls != H5T_INTEGER) {
    throw DataError(where + ": attribute is not an integer");
  }
  T value{};
  if (H5Aread(attribute.get(), native_type<T>(), &value) < 0) fail(where, "cannot read attribute");
  return value;
}

}  // namespace

void Group::set_attr(const std::string& name, const std::string& value) const {
  Handle type = string_type();
  const char* pointer = value.c_str();
  write_attribute(handle_.get(), name, type.get(), &pointer, file_ + ":" + path_ + "@" + name);
}

void Group::set_attr(const std::string& name, std::int64_t value) const {
  write_attribute(handle_.get(), name, H5T_NATIVE_INT64, &value, file_ + ":" + path_ + "@" + name);
}

void Group::set_attr(const std::string& name, double value) const {
  write_attribute(handle_.get(), name, H5T_NATIVE_DOUBLE, &value, file_ + ":" + path_ + "@" + name);
}

std::string Group::attr_string(const std::string& name) const {
  const std::string where = file_ + ":" + path_ + "@" + name;
  Handle attribute = open_attribute(handle_.get(), name, where);
  Handle type(H5Aget_type(attribute.get()));
  Handle space(H5Aget_space(attribute.get()));
  if (H5Sget_simple_extent_npoints(space.get()) != 1) {
    throw DataError(where + ": expected a single string");
  }
  return read_string_values(attribute.get(), type.get(), space.get(), 1, true, where).front();
}

std::int64_t Group::attr_int(const std::string& name) const {
  return read_numeric_attribute<std::int64_t>(handle_.get(), name, H5T_INTEGER,
                                              file_ + ":" + path_ + "@" + name);
}

double Group::attr_double(const std::string& name) const {
  return read_numeric_attribute<double>(handle_.get(), name, H5T_FLOAT,
                                        file_ + ":" + path_ + "@" + name);
}

// ---------------------------------------------------------------------------------------------
// Dataset

Dims Dataset::dims() const {
  Handle space(H5Dget_space(handle_.get()));
  if (!space.valid()) fail(path_, "cannot get dataspace");
  return space_dims(space.get(), path_);
}

template <typename T>
void Dataset::write_block(const Dims& offset, const Dims& count, const T* values) {
  Handle file_space(H5Dget_space(handle_.get()));
  if (!file_space.valid()) fail(path_, "cannot get dataspace");
  const auto hoffset = to_hsize(offset);
  const auto hcount = to_hsize(count);
  if (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, hoffset.data(), nullptr, hcount.data(),
                          nullptr) < 0) {
    fail(path_, "cannot select block");
  }
  if (product(count) == 0) return;
  Handle memory_space = make_space(count, path_);
  if (H5Dwrite(handle_.get(), native_type<T>(), memory_space.get(), file_space.get(), H5P_DEFAULT,
               values) < 0) {
    fail(path_, "cannot write block");
  }
}

template <typename T>
std::vector<T> Dataset::read_block(const Dims& offset, const Dims& count) const {
  std::vector<T> values(product(count));
  if (values.empty()) return values;
  Handle file_space(H5Dget_space(handle_.get()));
  if (!file_space.valid()) fail(path_, "cannot get dataspace");
  const auto hoffset = to_hsize(offset);
  const auto hcount = to_hsize(count);
  if (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, hoffset.data(), nullptr, hcount.data(),
                          nullptr) < 0) {
    fail(path_, "cannot select block");
  }
  Handle memory_space = make_space(count, path_);
  if (H5Dread(handle_.get(), native_type<T>(), memory_space.get(), file_space.get(), H5P_DEFAULT,
              values.data()) < 0) {
    fail(path_, "cannot read block");
  }
  return values;
}

template <typename T>
std::vector<T> Dataset::read_all() const {
  Handle type(H5Dget_type(handle_.get()));
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
    throw DataError(path_ + ": expected a numeric dataset");
  }
  std::vector<T> values(product(dims()));
  if (values.empty()) return values;
  if (H5Dread(handle_.get(), native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0) {
    fail(path_, "cannot read dataset");
  }
  return values;
}

void Dataset::extend(const Dims& new_dims) {
  const auto hdims = to_hsize(new_dims);
  if (H5Dset_extent(handle_.get(), hdims.data()) < 0) fail(path_, "cannot extend dataset");
}

// ---------------------------------------------------------------------------------------------
// float16, links, copies

namespace {

// IEEE 754 binary16, little-endian: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. HDF5
// has no predefined half type in 1.10; this layout is what h5py writes and maps to numpy.float16.
Handle half_type() {
  Handle type(H5Tcopy(H5T_IEEE_F32LE));
  if (!type.valid() || H5Tset_fields(type.get(), 15, 10, 5, 0, 10) < 0 ||
      H5Tset_size(type.get(), 2) < 0 || H5Tset_ebias(type.get(), 15) < 0) {
    fail("float16", "cannot build the IEEE half type");
  }
  return type;
}

}  // namespace

bool Dataset::is_float16() const {
  Handle type(H5Dget_type(handle_.get()));
  if (!type.valid()) fail(path_, "cannot get type");
  return H5Tget_class(type.get()) == H5T_FLOAT && H5Tget_size(type.get()) == 2;
}

void Dataset::write_float16_block(const Dims& offset, const Dims& count,
                                  const std::uint16_t* bits) {
  if (!is_float16()) throw DataError(path_ + ": not a float16 dataset");
  Handle file_space(H5Dget_space(handle_.get()));
  if (!file_space.valid()) fail(path_, "cannot get dataspace");
  const auto hoffset = to_hsize(offset);
  const auto hcount = to_hsize(count);
  if (product(count) == 0) return;
  if (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, hoffset.data(), nullptr, hcount.data(),
                          nullptr) < 0) {
    fail(path_, "cannot select block");
  }
  Handle memory_space = make_space(count, path_);
  Handle type = half_type();
  if (H5Dwrite(handle_.get(), type.get(), memory_space.get(), file_space.get(), H5P_DEFAULT, bits) <
      0) {
    fail(path_, "cannot write block");
  }
}

std::vector<std::uint16_t> Dataset::read_float16_block(const Dims& offset,
                                                       const Dims& count) const {
  if (!is_float16()) throw DataError(path_ + ": not a float16 dataset");
  std::vector<std::uint16_t> bits(product(count));
  if (bits.empty()) return bits;
  Handle file_space(H5Dget_space(handle_.get()));
  if (!file_space.valid()) fail(path_, "cannot get dataspace");
  const auto hoffset = to_hsize(offset);
  const auto hcount = to_hsize(count);
  if (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, hoffset.data(), nullptr, hcount.data(),
                          nullptr) < 0) {
    fail(path_, "cannot select block");
  }
  Handle memory_space = make_space(count, path_);
  Handle type = half_type();
  if (H5Dread(handle_.get(), type.get(), memory_space.get(), file_space.get(), H5P_DEFAULT,
              bits.data()) < 0) {
    fail(path_, "cannot read block");
  }
  return bits;
}

Dataset Group::create_float16(const std::string& name, const Dims& dims) const {
  Handle space = make_space(dims, child_path(name));
  Handle type = half_type();
  Handle dataset(H5Dcreate2(handle_.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT,
                            H5P_DEFAULT, H5P_DEFAULT));
  if (!dataset.valid()) fail(child_path(name), "cannot create float16 dataset");
  return Dataset(std::move(dataset), child_path(name));
}

void Group::create_external_link(const std::string& name, const std::string& target_file,
                                 const std::string& target_path) const {
  if (H5Lcreate_external(target_file.c_str(), target_path.c_str(), handle_.get(), name.c_str(),
                         H5P_DEFAULT, H5P_DEFAULT) < 0) {
    fail(child_path(name), "cannot create external link to " + target_file);
  }
}

bool Group::is_external_link(const std::string& name) const {
  if (H5Lexists(handle_.get(), name.c_str(), H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return false;
  }
  H5L_info_t info;
  if (H5Lget_info(handle_.get(), name.c_str(), &info, H5P_DEFAULT) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return false;
  }
  return info.type == H5L_TYPE_EXTERNAL;
}

Group::ExternalLink Group::external_link(const std::string& name) const {
  if (!is_external_link(name)) throw DataError(child_path(name) + ": not an external link");
  H5L_info_t info;
  if (H5Lget_info(handle_.get(), name.c_str(), &info, H5P_DEFAULT) < 0) {
    fail(child_path(name), "cannot read link");
  }
  std::vector<char> buffer(info.u.val_size + 1, '\0');
  if (H5Lget_val(handle_.get(), name.c_str(), buffer.data(), buffer.size(), H5P_DEFAULT) < 0) {
    fail(child_path(name), "cannot read link value");
  }
  unsigned flags = 0;
  const char* file = nullptr;
  const char* object = nullptr;
  if (H5Lunpack_elink_val(buffer.data(), info.u.val_size, &flags, &file, &object) < 0) {
    fail(child_path(name), "cannot unpack external link");
  }
  return {file ? file : "", object ? object : ""};
}

bool Group::resolves(const std::string& name) const {
  if (H5Lexists(handle_.get(), name.c_str(), H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return false;
  }
  // H5Oexists_by_name follows the link (and opens the external file) without keeping it open.
  const htri_t exists = H5Oexists_by_name(handle_.get(), name.c_str(), H5P_DEFAULT);
  H5Eclear2(H5E_DEFAULT);
  return exists > 0;
}

void Group::copy(const std::string& name, const Group& destination,
                 const std::string& new_name) const {
  if (H5Ocopy(handle_.get(), name.c_str(), destination.handle_.get(), new_name.c_str(), H5P_DEFAULT,
              H5P_DEFAULT) < 0) {
    fail(child_path(name), "cannot copy to " + destination.child_path(new_name));
  }
}

#define MLL_H5_INSTANTIATE(T)                                                                  \
  template void Group::write<T>(const std::string&, const std::vector<T>&, Dims) const;        \
  template std::vector<T> Group::read<T>(const std::string&, Dims*) const;                     \
  template Dataset Group::create_extendible<T>(const std::string&, const Dims&, std::uint64_t) \
      const;                                                                                   \
  template void Dataset::write_block<T>(const Dims&, const Dims&, const T*);                   \
  template std::vector<T> Dataset::read_block<T>(const Dims&, const Dims&) const;              \
  template std::vector<T> Dataset::read_all<T>() const;

MLL_H5_INSTANTIATE(std::int8_t)
MLL_H5_INSTANTIATE(std::uint8_t)
MLL_H5_INSTANTIATE(std::int16_t)
MLL_H5_INSTANTIATE(std::uint16_t)
MLL_H5_INSTANTIATE(std::int32_t)
MLL_H5_INSTANTIATE(std::uint32_t)
MLL_H5_INSTANTIATE(std::int64_t)
MLL_H5_INSTANTIATE(std::uint64_t)
MLL_H5_INSTANTIATE(float)
MLL_H5_INSTANTIATE(double)

#undef MLL_H5_INSTANTIATE

}  // namespace mll::h5
