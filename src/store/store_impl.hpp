// Internals shared by the label store's translation units (store.cpp: open/write paths,
// verify.cpp: the invariant checker). Not installed; hdf5 types stay behind mll::h5.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mll/core/model_id.hpp"
#include "mll/h5/h5.hpp"
#include "mll/store/store.hpp"
#include "seal.hpp"

namespace mll::store {

// A part file: rows [begin, end) of one kind, named `<kind>_<begin>_<end>.h5`.
struct Part {
  UnitKind kind = UnitKind::kImage;
  std::int64_t begin = 0;
  std::int64_t end = 0;
  std::string file;  // full path
};

// What is stored for one model: the rows of its finished file (0 when none) and its parts.
struct Coverage {
  std::int64_t finished_text = 0;
  std::int64_t finished_images = 0;
  std::int64_t dim = -1;          // -1 while nothing is stored
  std::vector<Part> text, image;  // sorted by begin
};

// Expectations a model file is checked against (adoption after a crash, and verify()).
struct ModelFileExpect {
  std::string id;
  std::string model_sha256;
  std::int64_t text_rows = 0;
  std::int64_t image_rows = 0;
  std::int64_t nodes = 0;
  bool exact = true;  // rows must equal text_rows/image_rows (else at most) and hashes match
  std::string graph_hash, probe_hash;
  bool check_values = false;  // read every row: finite, unit norm
  bool seal_checked = false;  // the caller already checked the file's seal (not hashed again)
};

// The record `mll store rm-model` leaves in the index (`/removed/<id>`): files of that id with no
// registry entry are leftovers of the removal, safe to delete. Files of an id with neither a
// registry entry nor a tombstone are never deleted (adopted or quarantined).
struct Tombstone {
  std::string id;
  std::string model_sha256;
  std::string removed_utc;
};

// The file names and state of an open store.
struct Store::Impl {
  std::string path;  // index file
  std::string dir;   // path + ".d"
  Mode mode = Mode::kRead;
  int lock_fd = -1;
  graph::Graph graph;
  probe::ProbeSet probe;
  std::string probe_hash;
  std::vector<std::string> captions;
  std::vector<std::int64_t> node_caption;
  std::vector<ModelRecord> records;  // sorted by id
  std::vector<Tombstone> removed;    // sorted by id; none of them in `records`
  std::string created_utc;
  OpenOptions options;
  // Files whose seal this Store checked, with the identity they had then (seal.hpp).
  mutable std::map<std::string, FileStamp> checked;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl();

  std::string model_file(const std::string& id) const {
    return dir + "/" + model_file_stem(id) + ".h5";
  }
  std::string parts_dir(const std::string& id) const {
    return dir + "/" + model_file_stem(id) + ".parts";
  }
  std::int64_t total(UnitKind kind) const {
    return kind == UnitKind::kText ? static_cast<std::int64_t>(captions.size())
                                   : static_cast<std::int64_t>(probe.image_count());
  }

  const ModelRecord& record(const std::string& id) const;  // UsageError if unknown
  ModelRecord* find(const std::string& id);
  // Opens a store file read-only after checking its seal (once per version of the file).
  // Throws DataError for a corrupt file, IoError.
  h5::File open_file(const std::string& file) const;
  // Whether this Store checked `file`'s seal and the file is still that version. Never throws.
  bool seal_checked(const std::string& file) const;
  const ModelRecord* find_const(const std::string& id) const;
  bool was_removed(const std::string& id) const;
  void require_writable(const char* what) const;

  std::vector<Part> list_parts(const std::string& id) const;
  Coverage coverage(const std::string& id) const;
  std::vector<std::uint16_t> read_rows(const std::string& id, UnitKind kind, std::int64_t begin,
                                       std::int64_t end, std::int64_t* dim) const;
  // Rows `ids` (strictly ascending) of one kind, converted to float.
  Matrix read_selected_rows(const std::string& id, UnitKind kind,
                            const std::vector<std::int64_t>& ids) const;
  VerifyReport verify() const;
};

// Row checks shared by commit_unit and verify: every value finite, L2 norm within 1e-2 of 1.
// Returns "" or what is wrong with the first bad row (`first_row` = id of bits[0]'s row).
std::string check_rows(const std::uint16_t* bits, std::int64_t rows, std::int64_t dim,
                       std::int64_t first_row);

// Problems of a model file against `expect` (empty when it is sound). Never throws.
std::vector<std::string> check_model_file(const std::string& file, const ModelFileExpect& expect);

// Parses `text_<b>_<e>.h5` / `image_<b>_<e>.h5`; nullopt for any other name.
std::optional<Part> parse_part_name(const std::string& name);
std::string part_name(UnitKind kind, std::int64_t begin, std::int64_t end);

// True for the names AtomicOutput gives temporary files: `<name>.tmp.<digits>`.
bool is_temp_name(const std::string& name);

// Reads the index at s.path into `s` (all but path, dir, mode and the lock): kind, schema version,
// graph, probe set and their hashes, captions, registry. Throws DataError, IoError.
void read_index(Store::Impl& s);
// Expectations for a model file that completes `r` in the store's current state.
ModelFileExpect complete_expect(const Store::Impl& s, const ModelRecord& r);
std::string base_name(const std::string& path);

// Rows copied per HDF5 call when streaming (bounds memory independently of P).
inline constexpr std::int64_t kCopyBlockRows = 4096;

}  // namespace mll::store
