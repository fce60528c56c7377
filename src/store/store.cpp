#include "mll/store/store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <future>
#include <map>
#include <sstream>
#include <thread>
#include <tuple>

#include "mll/core/cpus.hpp"
#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/core/log.hpp"
#include "mll/core/model_id.hpp"
#include "mll/core/time.hpp"
#include "mll/core/version.hpp"
#include "mll/h5/h5.hpp"
#include "mll/store/half.hpp"
#include "seal.hpp"
#include "store_impl.hpp"

namespace mll::store {
namespace stdfs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Small helpers

std::string to_string(ModelStatus status) {
  switch (status) {
    case ModelStatus::kPending:
      return "pending";
    case ModelStatus::kDone:
      return "done";
    case ModelStatus::kFailed:
      return "failed";
  }
  return "pending";
}

ModelStatus parse_status(const std::string& text) {
  if (text == "pending") return ModelStatus::kPending;
  if (text == "done") return ModelStatus::kDone;
  if (text == "failed") return ModelStatus::kFailed;
  MLL_THROW(DataError, "unknown model status '", text, "'");
}

std::string to_string(UnitKind kind) { return kind == UnitKind::kText ? "text" : "image"; }

bool is_temp_name(const std::string& name) {
  const auto at = name.rfind(".tmp.");
  if (at == std::string::npos || at + 5 == name.size()) return false;
  return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(at + 5), name.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

std::string part_name(UnitKind kind, std::int64_t begin, std::int64_t end) {
  return cat(to_string(kind), "_", begin, "_", end, ".h5");
}

std::optional<Part> parse_part_name(const std::string& name) {
  Part part;
  std::string rest;
  if (name.rfind("text_", 0) == 0) {
    part.kind = UnitKind::kText;
    rest = name.substr(5);
  } else if (name.rfind("image_", 0) == 0) {
    part.kind = UnitKind::kImage;
    rest = name.substr(6);
  } else {
    return std::nullopt;
  }
  if (rest.size() < 3 || rest.compare(rest.size() - 3, 3, ".h5") != 0) return std::nullopt;
  rest.resize(rest.size() - 3);
  const auto sep = rest.find('_');
  if (sep == std::string::npos) return std::nullopt;
  const std::string a = rest.substr(0, sep), b = rest.substr(sep + 1);
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() < 19 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!digits(a) || !digits(b)) return std::nullopt;
  part.begin = std::stoll(a);
  part.end = std::stoll(b);
  // Only the canonical spelling counts, so that one range has exactly one file name.
  if (part.begin >= part.end || part_name(part.kind, part.begin, part.end) != name) {
    return std::nullopt;
  }
  return part;
}

std::string base_name(const std::string& path) { return stdfs::path(path).filename().string(); }

namespace {

std::string parent_or_dot(const std::string& path) {
  const stdfs::path parent = stdfs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

// Refuses to start writing `file` when its file system has less than `bytes` free: HDF5 can crash
// when the disk fills in the middle of copying objects (the index rewrite copies the graph and
// probe set), so a write that cannot fit must not begin. Throws IoError (exit 74) naming the file.
void require_free_space(const std::string& file, std::uint64_t bytes) {
  struct statvfs st {};
  if (::statvfs(parent_or_dot(file).c_str(), &st) != 0) return;  // unknown: let the write tell
  const std::uint64_t free_bytes = static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
  if (free_bytes < bytes) {
    MLL_THROW(IoError, file, ": not enough free disk space to write it (about ", bytes,
              " bytes needed, ", free_bytes, " free); free some space and rerun (the store is ",
              "unchanged)");
  }
}

// Room to leave beyond a file's own size: HDF5 metadata, the seal, file system blocks.
constexpr std::uint64_t kWriteSlack = 1 << 20;

// Makes a directory entry change (a created or removed file or folder) durable.
void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) MLL_THROW(IoError, dir, ": cannot open to sync: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) MLL_THROW(IoError, dir, ": fsync failed: ", std::strerror(saved));
}

void make_dir_durable(const std::string& dir) {
  std::error_code ec;
  if (stdfs::is_directory(dir, ec)) return;
  if (!stdfs::create_directory(dir, ec) && !stdfs::is_directory(dir)) {
    MLL_THROW(IoError, dir, ": cannot create directory: ", ec.message());
  }
  fsync_dir(parent_or_dot(dir));
}

void remove_path(const std::string& path) {
  std::error_code ec;
  stdfs::remove_all(path, ec);
  if (ec) MLL_THROW(IoError, path, ": cannot remove: ", ec.message());
}

std::vector<std::string> list_dir(const std::string& dir) {
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

// The distinct captions of `graph` appended to `captions` (node order of first appearance), and
// each node's caption id. Old ids never change: the table is append-only.
std::vector<std::int64_t> extend_captions(const graph::Graph& graph,
                                          std::vector<std::string>& captions) {
  std::map<std::string, std::int64_t> ids;
  for (std::size_t i = 0; i < captions.size(); ++i) {
    ids.emplace(captions[i], static_cast<std::int64_t>(i));
  }
  std::vector<std::int64_t> node_caption;
  node_caption.reserve(graph.size());
  for (const auto& node : graph.nodes()) {
    auto [it, added] = ids.emplace(node.caption, static_cast<std::int64_t>(captions.size()));
    if (added) captions.push_back(node.caption);
    node_caption.push_back(it->second);
  }
  return node_caption;
}

void check_probe_matches(const graph::Graph& graph, const probe::ProbeSet& probe,
                         const std::string& where) {
  probe.validate();
  if (probe.graph_hash != graph.content_hash()) {
    MLL_THROW(DataError, where, ": the probe set was built from another graph (probe graph_hash ",
              probe.graph_hash.substr(0, 12), ", graph ", graph.content_hash().substr(0, 12), ")");
  }
  if (probe.node_count() != graph.size()) {
    MLL_THROW(DataError, where, ": the probe set has ", probe.node_count(),
              " nodes but the graph has ", graph.size());
  }
}

// Lock file content: "host pid start-time". Returns the fd holding the lock.
int acquire_lock(const std::string& path) {
  const std::string lock_path = path + ".lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) MLL_THROW(IoError, lock_path, ": cannot open lock file: ", std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int saved = errno;
    std::string holder;
    char buffer[512];
    const ssize_t n = ::pread(fd, buffer, sizeof buffer - 1, 0);
    ::close(fd);
    if (saved != EWOULDBLOCK) {
      MLL_THROW(IoError, lock_path, ": cannot lock: ", std::strerror(saved));
    }
    if (n > 0) holder.assign(buffer, static_cast<std::size_t>(n));
    std::istringstream fields(holder);
    std::string host, pid, since;
    fields >> host >> pid >> since;
    if (host.empty() || pid.empty()) {
      MLL_THROW(LockedError, path, " is locked by another writer (", lock_path, ")");
    }
    MLL_THROW(LockedError, path, " is locked by ", host, ":", pid, " since ", since,
              " (one writer at a time)");
  }
  char host[256] = "unknown";
  ::gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = '\0';
  const std::string text = cat(host, " ", ::getpid(), " ", utc_now(), "\n");
  // The content only informs a refused writer; failing to write it does not endanger the data.
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    log::warn(lock_path, ": cannot record the lock holder: ", std::strerror(errno));
  }
  return fd;
}

// The tables an index rewrite takes from memory rather than from the current index file.
struct Tables {
  const graph::Graph* graph = nullptr;
  const probe::ProbeSet* probe = nullptr;
  const std::vector<std::string>* captions = nullptr;
  const std::vector<std::int64_t>* node_caption = nullptr;
};

// The one way the index changes: a complete new index is written to `<path>.tmp.<pid>` (the
// graph and probe set copied from the current index unless new ones are given), fsync'd and
// renamed over the old one. A kill at any point leaves either the old or the new index.
void write_index(const Store::Impl& s, const std::vector<ModelRecord>& records,
                 const Tables* tables, const std::vector<Tombstone>* removed = nullptr) {
  std::error_code ec;
  const auto current = stdfs::file_size(s.path, ec);
  const std::uint64_t tables_bytes =
      tables ? 64 * (tables->probe->image_count() + tables->graph->size() + 1) : 0;
  require_free_space(s.path, 2 * (ec ? 0 : current) + tables_bytes + kWriteSlack);
  fs::AtomicOutput out(s.path);
  {
    h5::File file = h5::File::create(out.temp_path(), /*truncate=*/true, kSealBytes);
    const h5::Group root = file.root();
    root.set_attr("mll_file_kind", "label-store");
    root.set_attr("schema_version", kStoreSchemaVersion);
    root.set_attr("mll_version", version());
    root.set_attr("created_utc", s.created_utc);
    if (tables != nullptr) {
      graph::write_graph(*tables->graph, root.create_group("graph"));
      probe::write_probe(*tables->probe, root.create_group("probe"));
    } else {
      // Copied object by object so the graph and probe set keep their exact attributes.
      const h5::File old = s.open_file(s.path);
      old.root().copy("graph", root, "graph");
      old.root().copy("probe", root, "probe");
    }
    const h5::Group captions = root.create_group("captions");
    captions.write_strings("text", tables ? *tables->captions : s.captions);
    captions.write("node_caption", tables ? *tables->node_caption : s.node_caption);
    const h5::Group registry = root.create_group("registry");
    const h5::Group models = root.create_group("models");
    const std::string dir_name = base_name(s.dir);
    for (const auto& r : records) {
      const h5::Group g = registry.create_group(r.id);
      g.set_attr("status", to_string(r.status));
      g.set_attr("message", r.message);
      g.set_attr("model_sha256", r.model_sha256);
      g.set_attr("sidecar_json", r.sidecar_json);
      g.set_attr("registered_utc", r.registered_utc);
      g.set_attr("finished_utc", r.finished_utc);
      // Relative to the index's directory (HDF5 resolves it there), so the store can be moved.
      if (!r.finished_utc.empty()) {
        models.create_external_link(r.id, dir_name + "/" + model_file_stem(r.id) + ".h5", "/");
      }
    }
    const h5::Group tombstones = root.create_group("removed");
    for (const auto& t : removed ? *removed : s.removed) {
      const h5::Group g = tombstones.create_group(t.id);
      g.set_attr("model_sha256", t.model_sha256);
      g.set_attr("removed_utc", t.removed_utc);
    }
    file.close();
  }
  write_seal(out.temp_path());
  out.commit();
}

}  // namespace

// Reads the index into `s` (everything but path, dir, mode and the lock).
void read_index(Store::Impl& s) {
  fs::require_input_file(s.path, "label store");
  const h5::File file = s.open_file(s.path);
  const h5::Group root = file.root();
  const std::string kind =
      root.has_attr("mll_file_kind") ? root.attr_string("mll_file_kind") : std::string();
  if (kind != "label-store") {
    MLL_THROW(DataError, s.path, ": not an mll label store (mll_file_kind is '", kind,
              "', expected 'label-store')");
  }
  const std::int64_t schema = root.attr_int("schema_version");
  if (schema < kOldestReadableSchemaVersion || schema > kStoreSchemaVersion) {
    MLL_THROW(DataError, s.path, ": label store schema version ", schema,
              " is not supported (this mll reads versions ", kOldestReadableSchemaVersion, " to ",
              kStoreSchemaVersion, ")");
  }
  s.created_utc = root.has_attr("created_utc") ? root.attr_string("created_utc") : "";
  s.graph = graph::read_graph(root.open_group("graph"));
  s.probe = probe::read_probe(root.open_group("probe"));
  check_probe_matches(s.graph, s.probe, s.path);
  s.probe_hash = s.probe.content_hash();
  const h5::Group captions = root.open_group("captions");
  s.captions = captions.read_strings("text");
  s.node_caption = captions.read<std::int64_t>("node_caption");
  if (s.node_caption.size() != s.graph.size()) {
    MLL_THROW(DataError, s.path, ":/captions/node_caption has ", s.node_caption.size(),
              " entries for ", s.graph.size(), " nodes");
  }
  for (std::size_t v = 0; v < s.node_caption.size(); ++v) {
    const auto c = s.node_caption[v];
    if (c < 0 || static_cast<std::size_t>(c) >= s.captions.size() ||
        s.captions[static_cast<std::size_t>(c)] != s.graph.node(v).caption) {
      MLL_THROW(DataError, s.path, ":/captions: node ", s.graph.node(v).wnid,
                " does not point at its caption");
    }
  }
  s.records.clear();
  const h5::Group registry = root.open_group("registry");
  for (const auto& id : registry.list()) {
    const h5::Group g = registry.open_group(id);
    ModelRecord r;
    r.id = id;
    try {
      check_model_id(id);
      r.status = parse_status(g.attr_string("status"));
    } catch (Error& e) {
      e.add_context(s.path + ":/registry/" + id);
      throw DataError(e.what());
    }
    r.message = g.attr_string("message");
    r.model_sha256 = g.attr_string("model_sha256");
    r.sidecar_json = g.attr_string("sidecar_json");
    r.registered_utc = g.attr_string("registered_utc");
    r.finished_utc = g.attr_string("finished_utc");
    s.records.push_back(std::move(r));
  }
  // Tombstones: optional (stores written before they existed have none).
  s.removed.clear();
  if (root.has("removed")) {
    const h5::Group removed = root.open_group("removed");
    for (const auto& id : removed.list()) {
      const h5::Group g = removed.open_group(id);
      s.removed.push_back({id, g.attr_string("model_sha256"), g.attr_string("removed_utc")});
    }
  }
}

// Expectations for a model file that completes `r` in the store's current state.
ModelFileExpect complete_expect(const Store::Impl& s, const ModelRecord& r) {
  ModelFileExpect e;
  e.id = r.id;
  e.model_sha256 = r.model_sha256;
  e.text_rows = s.total(UnitKind::kText);
  e.image_rows = s.total(UnitKind::kImage);
  e.nodes = static_cast<std::int64_t>(s.graph.size());
  e.exact = true;
  e.graph_hash = s.graph.content_hash();
  e.probe_hash = s.probe_hash;
  return e;
}

namespace {

// Moves `full` (a file or folder of the store's directory) to `<index>.quarantine/`, where no
// reader looks and nothing is deleted; the warning names both places.
void quarantine(const Store::Impl& s, const std::string& full, const std::string& why) {
  const std::string dir = s.path + ".quarantine";
  make_dir_durable(dir);
  std::string target = dir + "/" + base_name(full);
  for (int k = 1; stdfs::exists(target); ++k) {
    target = dir + "/" + base_name(full) + "." + std::to_string(k);
  }
  std::error_code ec;
  stdfs::rename(full, target, ec);
  if (ec) MLL_THROW(IoError, full, ": cannot move to ", target, ": ", ec.message());
  fsync_dir(dir);
  fsync_dir(parent_or_dot(full));
  log::warn(full, ": ", why, "; moved to ", target, " (nothing was deleted)");
}

// The registry record a finished model file describes, when the file fits the index (its graph
// and probe hashes, every row): how a finished file the index does not know is adopted. Throws
// DataError naming both hashes when the file belongs to another graph or probe set and the
// store was not opened to quarantine such files; nullopt when it does not fit otherwise.
std::optional<ModelRecord> adoptable(const Store::Impl& s, const std::string& id,
                                     const std::string& file) {
  ModelRecord r;
  std::string graph_hash, probe_hash;
  try {
    const h5::File f = s.open_file(file);
    const h5::Group root = f.root();
    r.id = id;
    r.status = ModelStatus::kDone;
    r.model_sha256 = root.attr_string("model_sha256");
    r.sidecar_json = root.attr_string("sidecar_json");
    r.registered_utc = root.attr_string("started_utc");
    r.finished_utc = root.attr_string("finished_utc");
    graph_hash = root.attr_string("graph_hash");
    probe_hash = root.attr_string("probe_hash");
  } catch (const Error&) {
    return std::nullopt;  // unreadable: quarantined by the caller
  }
  const std::string index_graph = s.graph.content_hash();
  if ((graph_hash != index_graph || probe_hash != s.probe_hash) &&
      s.options.foreign_files == Store::ForeignFiles::kRefuse) {
    MLL_THROW(DataError, file, " was labeled for graph ", graph_hash.substr(0, 16),
              " and probe set ", probe_hash.substr(0, 16), " but the index ", s.path,
              " holds graph ", index_graph.substr(0, 16), " and probe set ",
              s.probe_hash.substr(0, 16),
              ": this index does not belong to these model files; put the right index back, or "
              "label with --quarantine-foreign to move such files aside");
  }
  ModelFileExpect expect = complete_expect(s, r);
  expect.seal_checked = s.seal_checked(file);  // open_file above
  if (!check_model_file(file, expect).empty()) return std::nullopt;
  return r;
}

// Whether `full` (an unregistered id's model file or parts folder) is what a removal left: the
// id has a tombstone and, for a model file, the file is of the removed model (same model
// sha256, read after its seal holds). A file of the same id from elsewhere is not deleted.
bool removed_leftover(const Store::Impl& s, const std::string& id, const std::string& full,
                      bool parts) {
  const auto it = std::find_if(s.removed.begin(), s.removed.end(),
                               [&](const Tombstone& t) { return t.id == id; });
  if (it == s.removed.end()) return false;
  if (parts) return true;  // unfinished rows of the removed model
  try {
    return s.open_file(full).root().attr_string("model_sha256") == it->model_sha256;
  } catch (const Error&) {
    return false;  // unreadable: quarantined by the caller, not deleted
  }
}

// Files of ids the registry does not know, in the store's directory: removed (a tombstone says
// so), adopted (a finished file that fits the index) or quarantined. Returns the records adopted.
std::vector<ModelRecord> settle_unregistered(const Store::Impl& s) {
  std::vector<ModelRecord> adopted;
  const auto known = [&](const std::string& id) {
    return s.find_const(id) != nullptr ||
           std::any_of(adopted.begin(), adopted.end(), [&](const auto& r) { return r.id == id; });
  };
  for (const bool parts : {false, true}) {  // model files first: an adopted model's parts stay
    const std::string suffix = parts ? ".parts" : ".h5";
    for (const auto& name : list_dir(s.dir)) {
      if (is_temp_name(name) || name.size() <= suffix.size() ||
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
        continue;
      }
      const std::string full = s.dir + "/" + name;
      const auto decoded = model_id_from_file_stem(name.substr(0, name.size() - suffix.size()));
      if (!decoded) {
        quarantine(s, full, "its name is not the file name of a model id");
        continue;
      }
      const std::string& id = *decoded;
      if (known(id)) continue;
      if (removed_leftover(s, id, full, parts)) {
        // remove_model rewrites the index (with the tombstone) before deleting files.
        log::info("removing ", name, ": model ", id, " was removed (mll store rm-model)");
        remove_path(full);
        continue;
      }
      if (!parts) {
        if (auto r = adoptable(s, id, full)) {
          log::warn(full, ": finished model '", id, "' not in the index ", s.path,
                    "; adopted (its hashes and rows fit the index)");
          adopted.push_back(std::move(*r));
          continue;
        }
      }
      quarantine(s, full, "model '" + id + "' is neither registered nor removed in " + s.path);
    }
  }
  return adopted;
}

// Whether a link of the index names another folder than the store's own (the store was renamed,
// index and folder together): rewriting the index points them home.
bool links_name_another_folder(const Store::Impl& s) {
  const h5::File index = s.open_file(s.path);
  const h5::Group models = index.root().open_group("models");
  for (const auto& name : models.list()) {
    if (models.is_external_link(name) &&
        models.external_link(name).file != base_name(s.dir) + "/" + model_file_stem(name) + ".h5") {
      log::info(s.path, ": links name the store's old folder; pointing them at ", base_name(s.dir));
      return true;
    }
  }
  return false;
}

// Checks the seals of `files`, several at once: problems[k] is what is wrong with files[k] ("" when
// its seal holds), stamps[k] its identity before the check. IoError (unreadable) propagates.
void check_seals_at_once(const std::vector<std::string>& files, std::vector<std::string>& problems,
                         std::vector<FileStamp>& stamps) {
  const std::size_t workers = static_cast<unsigned>(usable_cpu_count());
  for (std::size_t first = 0; first < files.size(); first += workers) {
    std::vector<std::future<void>> running;
    for (std::size_t k = first; k < std::min(files.size(), first + workers); ++k) {
      running.push_back(std::async(std::launch::async, [&, k] {
        try {
          stamps[k] = stamp_of(files[k]);
          check_seal(files[k]);
        } catch (const DataError& e) {
          problems[k] = e.what();
        }
      }));
    }
    for (auto& f : running) f.get();
  }
}

// Checks the seal of every model and part file of the registered models, several files at once
// (a writer open reads the whole store once; the Store remembers what it checked). A corrupt
// file is quarantined, so that labeling recomputes exactly its rows: a corrupt model file turns
// its model (in `records`) back into pending with no finished rows. Returns whether a record
// changed.
bool quarantine_corrupt(const Store::Impl& s, std::vector<ModelRecord>& records) {
  std::vector<std::string> files;
  for (const auto& r : records) {
    if (stdfs::exists(s.model_file(r.id))) files.push_back(s.model_file(r.id));
    for (const auto& part : s.list_parts(r.id)) files.push_back(part.file);
  }
  std::vector<std::string> problems(files.size());
  std::vector<FileStamp> stamps(files.size());
  check_seals_at_once(files, problems, stamps);
  bool changed = false;
  for (std::size_t k = 0; k < files.size(); ++k) {
    if (problems[k].empty()) {
      s.checked[files[k]] = stamps[k];
      continue;
    }
    quarantine(s, files[k], problems[k] + "; its rows will be labeled again");
    for (auto& r : records) {
      if (files[k] != s.model_file(r.id)) continue;
      if (r.status == ModelStatus::kDone) r.status = ModelStatus::kPending;
      r.finished_utc.clear();
      changed = true;
    }
  }
  return changed;
}

// Cleans up after an interrupted writer (docs/store-format.md, "Why this layout"). Every step is
// idempotent, so a kill during repair is repaired by the next open.
void repair(Store::Impl& s) {
  make_dir_durable(s.dir);
  const std::string prefix = base_name(s.path) + ".tmp.";
  for (const auto& name : list_dir(parent_or_dot(s.path))) {
    if (name.rfind(prefix, 0) == 0 && is_temp_name(name)) {
      log::info("removing ", name, " left by an interrupted writer");
      remove_path(parent_or_dot(s.path) + "/" + name);
    }
  }
  for (const auto& name : list_dir(s.dir)) {
    const std::string full = s.dir + "/" + name;
    if (is_temp_name(name)) {
      remove_path(full);
    } else if (name.size() > 6 && name.compare(name.size() - 6, 6, ".parts") == 0 &&
               stdfs::is_directory(full)) {
      for (const auto& part : list_dir(full)) {
        if (is_temp_name(part)) remove_path(full + "/" + part);
      }
    }
  }
  std::vector<ModelRecord> records = s.records;
  bool changed = quarantine_corrupt(s, records);
  changed = links_name_another_folder(s) || changed;
  std::vector<ModelRecord> adopted = settle_unregistered(s);
  changed = changed || !adopted.empty();
  for (auto& r : adopted) records.push_back(std::move(r));
  std::sort(records.begin(), records.end(),
            [](const ModelRecord& a, const ModelRecord& b) { return a.id < b.id; });
  for (auto& r : records) {
    // A finished model without its file (quarantined by a run killed before its index rewrite,
    // or deleted by hand): its rows are labeled again.
    if (!r.finished_utc.empty() && !stdfs::exists(s.model_file(r.id))) {
      log::warn(s.model_file(r.id), ": missing; model '", r.id, "' will be labeled again");
      r.status = ModelStatus::kPending;
      r.finished_utc.clear();
      changed = true;
      continue;
    }
    if (r.status == ModelStatus::kDone) continue;
    const std::string file = s.model_file(r.id);
    if (!stdfs::exists(file)) continue;
    // finish_model renames the complete file into place before recording it: a complete file
    // for the current graph and probe set means the model was finished.
    ModelFileExpect expect = complete_expect(s, r);
    expect.seal_checked = s.seal_checked(file);  // quarantine_corrupt above
    const auto problems = check_model_file(file, expect);
    if (!problems.empty()) continue;
    const h5::File f = s.open_file(file);
    log::info("adopting finished model file ", file);
    r.status = ModelStatus::kDone;
    r.message.clear();
    r.finished_utc = f.root().attr_string("finished_utc");
    changed = true;
  }
  if (changed) {
    write_index(s, records, nullptr);
    s.records = std::move(records);
  }
  for (const auto& r : s.records) {
    if (r.status == ModelStatus::kDone && stdfs::exists(s.parts_dir(r.id))) {
      log::info("removing parts of finished model ", r.id);
      remove_path(s.parts_dir(r.id));
      fsync_dir(s.dir);
    }
  }
}

std::uint64_t u64(std::int64_t v) { return static_cast<std::uint64_t>(v); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Impl

Store::Impl::~Impl() {
  if (lock_fd >= 0) ::close(lock_fd);  // closing the descriptor releases the flock
}

const ModelRecord& Store::Impl::record(const std::string& id) const {
  check_model_id(id);
  for (const auto& r : records) {
    if (r.id == id) return r;
  }
  MLL_THROW(UsageError, path, ": no model '", id, "' in the store");
}

bool Store::Impl::seal_checked(const std::string& file) const {
  const auto it = checked.find(file);
  try {
    return it != checked.end() && it->second == stamp_of(file);
  } catch (const Error&) {
    return false;
  }
}

h5::File Store::Impl::open_file(const std::string& file) const {
  std::error_code ec;
  if (stdfs::exists(file, ec) && !seal_checked(file)) {
    const FileStamp stamp = stamp_of(file);
    check_seal(file);
    checked[file] = stamp;
  }
  return h5::File::open(file, h5::Access::kReadOnly);  // a missing file: its error
}

bool Store::Impl::was_removed(const std::string& id) const {
  return std::any_of(removed.begin(), removed.end(),
                     [&](const Tombstone& t) { return t.id == id; });
}

const ModelRecord* Store::Impl::find_const(const std::string& id) const {
  for (const auto& r : records) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

ModelRecord* Store::Impl::find(const std::string& id) {
  for (auto& r : records) {
    if (r.id == id) return &r;
  }
  return nullptr;
}

void Store::Impl::require_writable(const char* what) const {
  if (mode != Mode::kWrite) MLL_THROW(UsageError, path, ": cannot ", what, ": opened read-only");
}

std::vector<Part> Store::Impl::list_parts(const std::string& id) const {
  std::vector<Part> parts;
  const std::string folder = parts_dir(id);
  for (const auto& name : list_dir(folder)) {
    auto part = parse_part_name(name);
    if (!part) continue;  // temporary or foreign files are not work done
    part->file = folder + "/" + name;
    parts.push_back(*part);
  }
  std::sort(parts.begin(), parts.end(), [](const Part& a, const Part& b) {
    return std::tie(a.kind, a.begin, a.end) < std::tie(b.kind, b.begin, b.end);
  });
  return parts;
}

Coverage Store::Impl::coverage(const std::string& id) const {
  const ModelRecord& r = record(id);
  Coverage c;
  if (!r.finished_utc.empty()) {
    const h5::File f = open_file(model_file(id));
    const h5::Dims text = f.root().dims("text_embeddings");
    const h5::Dims image = f.root().dims("image_embeddings");
    if (text.size() != 2 || image.size() != 2 || text[1] != image[1]) {
      MLL_THROW(DataError, model_file(id), ": embeddings are not two matrices of one width");
    }
    c.finished_text = static_cast<std::int64_t>(text[0]);
    c.finished_images = static_cast<std::int64_t>(image[0]);
    c.dim = static_cast<std::int64_t>(text[1]);
  }
  for (auto& part : list_parts(id)) {
    (part.kind == UnitKind::kText ? c.text : c.image).push_back(part);
  }
  if (c.dim < 0) {
    const std::vector<Part>& any = c.text.empty() ? c.image : c.text;
    if (!any.empty()) {
      const h5::File f = open_file(any.front().file);
      c.dim = f.root().attr_int("dim");
    }
  }
  return c;
}

std::vector<std::uint16_t> Store::Impl::read_rows(const std::string& id, UnitKind kind,
                                                  std::int64_t begin, std::int64_t end,
                                                  std::int64_t* dim) const {
  const Coverage c = coverage(id);
  if (begin < 0 || end < begin || end > total(kind)) {
    MLL_THROW(UsageError, id, ": ", to_string(kind), " rows [", begin, ", ", end,
              ") out of range (", total(kind), " rows)");
  }
  *dim = std::max<std::int64_t>(c.dim, 0);
  std::vector<std::uint16_t> out(u64((end - begin) * *dim));
  std::int64_t cursor = begin;
  const std::int64_t finished = kind == UnitKind::kText ? c.finished_text : c.finished_images;
  if (cursor < end && cursor < finished) {
    const std::int64_t stop = std::min(end, finished);
    const h5::File f = open_file(model_file(id));
    const auto bits =
        f.root()
            .open_dataset(kind == UnitKind::kText ? "text_embeddings" : "image_embeddings")
            .read_float16_block({u64(cursor), 0}, {u64(stop - cursor), u64(*dim)});
    std::copy(bits.begin(), bits.end(), out.begin() + (cursor - begin) * *dim);
    cursor = stop;
  }
  for (const Part& part : kind == UnitKind::kText ? c.text : c.image) {
    if (cursor >= end) break;
    if (part.end <= cursor) continue;
    if (part.begin > cursor) break;  // a gap: reported below
    const std::int64_t stop = std::min(end, part.end);
    const h5::File f = open_file(part.file);
    const auto bits = f.root().open_dataset("rows").read_float16_block(
        {u64(cursor - part.begin), 0}, {u64(stop - cursor), u64(*dim)});
    std::copy(bits.begin(), bits.end(), out.begin() + (cursor - begin) * *dim);
    cursor = stop;
  }
  if (cursor < end) {
    MLL_THROW(DataError, path, ": model ", id, ": ", to_string(kind), " row ", cursor,
              " is not labeled yet");
  }
  return out;
}

Matrix Store::Impl::read_selected_rows(const std::string& id, UnitKind kind,
                                       const std::vector<std::int64_t>& ids) const {
  const Coverage c = coverage(id);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= total(kind) || (i > 0 && ids[i] <= ids[i - 1])) {
      MLL_THROW(UsageError, id, ": ", to_string(kind), " row ", ids[i],
                " is out of range or out of order (", total(kind), " rows)");
    }
  }
  Matrix m;
  m.rows = static_cast<std::int64_t>(ids.size());
  m.cols = std::max<std::int64_t>(c.dim, 0);
  m.values.resize(u64(m.rows * m.cols));
  // Runs of the asked rows, read through gaps of up to kGap rows, at most kSpan rows per read.
  constexpr std::int64_t kGap = 64, kSpan = 4096;
  std::size_t next = 0;  // the first of `ids` not yet read
  const auto read_source = [&](const std::string& file, const char* dataset, std::int64_t begin,
                               std::int64_t end) {
    if (next < ids.size() && ids[next] < begin) {
      MLL_THROW(DataError, path, ": model ", id, ": ", to_string(kind), " row ", ids[next],
                " is not labeled yet");
    }
    if (next == ids.size() || ids[next] >= end) return;
    const h5::File f = open_file(file);
    const h5::Dataset rows = f.root().open_dataset(dataset);
    while (next < ids.size() && ids[next] < end) {
      std::size_t last = next + 1;
      while (last < ids.size() && ids[last] < end && ids[last] - ids[last - 1] <= kGap &&
             ids[last] - ids[next] < kSpan) {
        ++last;
      }
      const std::int64_t first = ids[next], stop = ids[last - 1] + 1;
      const auto bits =
          rows.read_float16_block({u64(first - begin), 0}, {u64(stop - first), u64(m.cols)});
      for (std::size_t r = next; r < last; ++r) {
        half_to_float_n(bits.data() + (ids[r] - first) * m.cols, u64(m.cols),
                        m.values.data() + r * u64(m.cols));
      }
      next = last;
    }
  };
  const std::int64_t finished = kind == UnitKind::kText ? c.finished_text : c.finished_images;
  if (finished > 0) {
    read_source(model_file(id), kind == UnitKind::kText ? "text_embeddings" : "image_embeddings", 0,
                finished);
  }
  for (const Part& part : kind == UnitKind::kText ? c.text : c.image) {
    read_source(part.file, "rows", part.begin, part.end);
  }
  if (next < ids.size()) {
    MLL_THROW(DataError, path, ": model ", id, ": ", to_string(kind), " row ", ids[next],
              " is not labeled yet");
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// Store: opening

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;

Store Store::create(const std::string& path, const graph::Graph& graph,
                    const probe::ProbeSet& probe, bool force) {
  check_probe_matches(graph, probe, path);
  auto s = std::make_unique<Impl>();
  s->path = path;
  s->dir = path + ".d";
  s->mode = Mode::kWrite;
  std::error_code ec;
  if (!force && stdfs::exists(s->dir, ec)) {
    MLL_THROW(UsageError, path, ": a label store exists (", s->dir,
              "; pass --force to replace it)");
  }
  fs::check_output_path(path, force);
  s->lock_fd = acquire_lock(path);
  s->graph = graph;
  s->probe = probe;
  s->probe_hash = probe.content_hash();
  s->node_caption = extend_captions(graph, s->captions);
  s->created_utc = utc_now();
  const Tables tables{&s->graph, &s->probe, &s->captions, &s->node_caption};
  write_index(*s, {}, &tables);
  // Replaced only after the new index is in place: a kill before this point leaves files of
  // models the new index does not know; the next writer open adopts those that fit it (same
  // graph and probe set: the same labels) and refuses or quarantines the others.
  if (force) remove_path(s->dir);
  make_dir_durable(s->dir);
  return Store(std::move(s));
}

Store Store::open(const std::string& path, Mode mode, const OpenOptions& options) {
  auto s = std::make_unique<Impl>();
  s->options = options;
  s->path = path;
  s->dir = path + ".d";
  s->mode = mode;
  fs::require_input_file(path, "label store");
  // Lock before reading so that the index cannot change between reading and repairing.
  if (mode == Mode::kWrite) s->lock_fd = acquire_lock(path);
  read_index(*s);
  if (mode == Mode::kWrite) repair(*s);
  return Store(std::move(s));
}

const std::string& Store::path() const noexcept { return impl_->path; }
Store::Mode Store::mode() const noexcept { return impl_->mode; }
const graph::Graph& Store::graph() const noexcept { return impl_->graph; }
const probe::ProbeSet& Store::probe() const noexcept { return impl_->probe; }
const std::vector<std::string>& Store::captions() const noexcept { return impl_->captions; }
const std::vector<std::int64_t>& Store::node_caption() const noexcept {
  return impl_->node_caption;
}
const std::vector<ModelRecord>& Store::models() const noexcept { return impl_->records; }

std::optional<ModelRecord> Store::find_model(const std::string& id) const {
  for (const auto& r : impl_->records) {
    if (r.id == id) return r;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Store: writing

void Store::register_model(const ModelRecord& record) {
  Impl& s = *impl_;
  s.require_writable("register a model");
  check_model_id(record.id);
  std::vector<ModelRecord> records = s.records;
  if (ModelRecord* existing = s.find(record.id)) {
    if (existing->model_sha256 != record.model_sha256) {
      MLL_THROW(DataError, "model ", record.id, " in ", s.path,
                " was labeled from a different file (sha256 ", existing->model_sha256.substr(0, 12),
                ", now ", record.model_sha256.substr(0, 12), "); mll store rm-model ", record.id,
                " first");
    }
    if (existing->status != ModelStatus::kFailed) return;
    for (auto& r : records) {
      if (r.id == record.id) {
        r.status = ModelStatus::kPending;
        r.message.clear();
      }
    }
  } else {
    ModelRecord r = record;
    r.status = ModelStatus::kPending;
    r.message.clear();
    r.finished_utc.clear();
    if (r.registered_utc.empty()) r.registered_utc = utc_now();
    records.push_back(std::move(r));
    std::sort(records.begin(), records.end(),
              [](const ModelRecord& a, const ModelRecord& b) { return a.id < b.id; });
  }
  // Registered again after a removal: the tombstone goes (the id names live work again).
  std::vector<Tombstone> removed;
  for (const auto& t : s.removed) {
    if (t.id != record.id) removed.push_back(t);
  }
  write_index(s, records, nullptr, &removed);
  s.records = std::move(records);
  s.removed = std::move(removed);
}

std::vector<Unit> Store::missing_units(const std::string& id, std::int64_t image_unit_size,
                                       std::int64_t text_unit_size) const {
  const Impl& s = *impl_;
  if (image_unit_size <= 0 || text_unit_size <= 0) {
    MLL_THROW(UsageError, "unit sizes must be positive (image ", image_unit_size, ", text ",
              text_unit_size, ")");
  }
  const Coverage c = s.coverage(id);
  std::vector<Unit> units;
  auto cut = [&](UnitKind kind, std::int64_t finished, const std::vector<Part>& parts,
                 std::int64_t size) {
    std::int64_t cursor = finished;
    auto emit = [&](std::int64_t until) {
      for (; cursor < until; cursor = std::min(until, cursor + size)) {
        units.push_back({kind, cursor, std::min(until, cursor + size)});
      }
    };
    for (const Part& p : parts) {
      if (p.begin > cursor) emit(std::min(p.begin, s.total(kind)));
      cursor = std::max(cursor, p.end);
    }
    emit(s.total(kind));
  };
  cut(UnitKind::kText, c.finished_text, c.text, text_unit_size);
  cut(UnitKind::kImage, c.finished_images, c.image, image_unit_size);
  return units;
}

Progress Store::progress(const std::string& id) const {
  const Impl& s = *impl_;
  const Coverage c = s.coverage(id);
  Progress p;
  p.text_total = s.total(UnitKind::kText);
  p.images_total = s.total(UnitKind::kImage);
  p.text_done = c.finished_text;
  p.images_done = c.finished_images;
  for (const Part& part : c.text) p.text_done += part.end - part.begin;
  for (const Part& part : c.image) p.images_done += part.end - part.begin;
  return p;
}

void Store::commit_unit(const std::string& id, const Unit& unit, const float* rows,
                        std::int64_t dim) {
  Impl& s = *impl_;
  s.require_writable("commit a unit");
  const ModelRecord& r = s.record(id);
  const std::int64_t total = s.total(unit.kind);
  if (unit.begin < 0 || unit.end <= unit.begin || unit.end > total) {
    MLL_THROW(UsageError, "model ", id, ": ", to_string(unit.kind), " unit [", unit.begin, ", ",
              unit.end, ") is outside [0, ", total, ")");
  }
  if (dim <= 0) MLL_THROW(UsageError, "model ", id, ": embedding width ", dim);
  const Coverage c = s.coverage(id);
  if (c.dim >= 0 && c.dim != dim) {
    MLL_THROW(DataError, "model ", id, ": embeddings of width ", dim, " but earlier rows have ",
              c.dim);
  }
  // Overlapping parts would make the consolidated rows depend on which file wins.
  const std::int64_t finished = unit.kind == UnitKind::kText ? c.finished_text : c.finished_images;
  bool overlaps = unit.begin < finished;
  for (const Part& p : unit.kind == UnitKind::kText ? c.text : c.image) {
    overlaps = overlaps || (p.begin < unit.end && unit.begin < p.end);
  }
  if (overlaps) {
    MLL_THROW(UsageError, "model ", id, ": ", to_string(unit.kind), " unit [", unit.begin, ", ",
              unit.end, ") overlaps rows already stored");
  }
  std::vector<std::uint16_t> bits(u64(unit.size() * dim));
  for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = float_to_half(rows[i]);
  const std::string problem = check_rows(bits.data(), unit.size(), dim, unit.begin);
  if (!problem.empty()) {
    MLL_THROW(DataError, "model ", id, ": ", to_string(unit.kind), " embeddings: ", problem);
  }
  make_dir_durable(s.parts_dir(id));
  const std::string part = s.parts_dir(id) + "/" + part_name(unit.kind, unit.begin, unit.end);
  require_free_space(part, bits.size() * 2 + kWriteSlack);
  fs::AtomicOutput out(part);
  {
    h5::File f = h5::File::create(out.temp_path(), /*truncate=*/true, kSealBytes);
    const h5::Group root = f.root();
    root.set_attr("schema_version", kStoreSchemaVersion);
    root.set_attr("model_id", id);
    root.set_attr("kind", to_string(unit.kind));
    root.set_attr("begin", unit.begin);
    root.set_attr("end", unit.end);
    root.set_attr("dim", dim);
    root.set_attr("model_sha256", r.model_sha256);
    root.create_float16("rows", {u64(unit.size()), u64(dim)})
        .write_float16_block({0, 0}, {u64(unit.size()), u64(dim)}, bits.data());
    f.close();
  }
  write_seal(out.temp_path());
  out.commit();
}

void Store::finish_model(const std::string& id, const ModelLabels& labels, const FinishInfo& info) {
  Impl& s = *impl_;
  s.require_writable("finish a model");
  const ModelRecord& r = s.record(id);
  const Coverage c = s.coverage(id);
  const std::size_t n = s.graph.size();
  MLL_CHECK(labels.node_top1.size() == n && labels.subtree_top1.size() == n &&
                labels.node_confusion.size() == 3 * n,
            "labels of model ", id, " do not match the graph's ", n, " nodes");
  for (UnitKind kind : {UnitKind::kText, UnitKind::kImage}) {
    std::int64_t cursor = kind == UnitKind::kText ? c.finished_text : c.finished_images;
    for (const Part& p : kind == UnitKind::kText ? c.text : c.image) {
      MLL_CHECK(p.begin == cursor, "model ", id, ": ", to_string(kind), " rows [", cursor, ", ",
                p.begin, ") are not labeled (finish_model before every unit was committed)");
      cursor = p.end;
    }
    MLL_CHECK(cursor == s.total(kind), "model ", id, ": ", to_string(kind), " rows [", cursor, ", ",
              s.total(kind), ") are not labeled");
  }
  const std::int64_t dim = c.dim;
  MLL_CHECK(dim > 0, "model ", id, " has no rows");

  // A finish that measured no parity (the model was not loaded in this run) keeps the last one.
  std::string parity_json = info.parity_json;
  if (parity_json.empty() && (c.finished_text > 0 || c.finished_images > 0)) {
    const h5::File old = s.open_file(s.model_file(id));
    if (old.root().has_attr("parity_json")) parity_json = old.root().attr_string("parity_json");
  }

  const std::string finished_utc = utc_now();
  const std::uint64_t all_rows = u64(s.total(UnitKind::kText) + s.total(UnitKind::kImage));
  require_free_space(s.model_file(id), all_rows * u64(dim) * 2 + 16 * s.graph.size() + kWriteSlack);
  {
    fs::AtomicOutput out(s.model_file(id));
    {
      h5::File f = h5::File::create(out.temp_path(), /*truncate=*/true, kSealBytes);
      const h5::Group root = f.root();
      root.set_attr("schema_version", kStoreSchemaVersion);
      root.set_attr("model_id", id);
      root.set_attr("status", "done");
      root.set_attr("dim", dim);
      root.set_attr("logit_scale", info.logit_scale);
      root.set_attr("model_sha256", r.model_sha256);
      root.set_attr("sidecar_json", r.sidecar_json);
      root.set_attr("config_json", info.config_json);
      if (!parity_json.empty()) root.set_attr("parity_json", parity_json);
      root.set_attr("mll_version", version());
      root.set_attr("started_utc", info.started_utc.empty() ? r.registered_utc : info.started_utc);
      root.set_attr("finished_utc", finished_utc);
      root.set_attr("graph_hash", s.graph.content_hash());
      root.set_attr("probe_hash", s.probe_hash);
      // Streamed: the previous file's rows in blocks, then one part at a time.
      std::optional<h5::File> previous;
      if (c.finished_text > 0 || c.finished_images > 0) {
        previous.emplace(s.open_file(s.model_file(id)));
      }
      for (UnitKind kind : {UnitKind::kText, UnitKind::kImage}) {
        const std::string name = kind == UnitKind::kText ? "text_embeddings" : "image_embeddings";
        h5::Dataset target = root.create_float16(name, {u64(s.total(kind)), u64(dim)});
        const std::int64_t finished = kind == UnitKind::kText ? c.finished_text : c.finished_images;
        if (finished > 0) {
          const h5::Dataset source = previous->root().open_dataset(name);
          for (std::int64_t b = 0; b < finished; b += kCopyBlockRows) {
            const std::int64_t e = std::min(finished, b + kCopyBlockRows);
            const auto bits = source.read_float16_block({u64(b), 0}, {u64(e - b), u64(dim)});
            target.write_float16_block({u64(b), 0}, {u64(e - b), u64(dim)}, bits.data());
          }
        }
        for (const Part& p : kind == UnitKind::kText ? c.text : c.image) {
          const h5::File pf = s.open_file(p.file);
          const h5::Dataset rows = pf.root().open_dataset("rows");
          const h5::Dims dims = rows.dims();
          if (dims != h5::Dims{u64(p.end - p.begin), u64(dim)}) {
            MLL_THROW(DataError, p.file, ": rows have the wrong shape");
          }
          const auto bits = rows.read_float16_block({0, 0}, dims);
          target.write_float16_block({u64(p.begin), 0}, dims, bits.data());
        }
      }
      previous.reset();
      const h5::Group g = root.create_group("labels");
      g.write("node_top1", labels.node_top1);
      g.write("node_confusion", labels.node_confusion, {n, 3});
      g.write("subtree_top1", labels.subtree_top1);
      f.close();
    }
    write_seal(out.temp_path());
    out.commit();
  }
  std::vector<ModelRecord> records = s.records;
  for (auto& rec : records) {
    if (rec.id != id) continue;
    rec.status = ModelStatus::kDone;
    rec.message.clear();
    rec.finished_utc = finished_utc;
  }
  write_index(s, records, nullptr);
  s.records = std::move(records);
  if (stdfs::exists(s.parts_dir(id))) {
    remove_path(s.parts_dir(id));
    fsync_dir(s.dir);
  }
}

void Store::fail_model(const std::string& id, const std::string& message) {
  Impl& s = *impl_;
  s.require_writable("record a failure");
  const ModelRecord& r = s.record(id);
  if (r.status == ModelStatus::kDone) {
    MLL_THROW(UsageError, "model ", id, " is done; it cannot be marked failed");
  }
  std::vector<ModelRecord> records = s.records;
  for (auto& rec : records) {
    if (rec.id != id) continue;
    rec.status = ModelStatus::kFailed;
    rec.message = message.empty() ? "failed (no reason given)" : message;
  }
  write_index(s, records, nullptr);
  s.records = std::move(records);
}

void Store::remove_model(const std::string& id) {
  Impl& s = *impl_;
  s.require_writable("remove a model");
  s.record(id);
  std::vector<ModelRecord> records;
  std::vector<Tombstone> removed = s.removed;
  for (const auto& r : s.records) {
    if (r.id != id) {
      records.push_back(r);
    } else {
      removed.push_back({r.id, r.model_sha256, utc_now()});
    }
  }
  std::sort(removed.begin(), removed.end(),
            [](const Tombstone& a, const Tombstone& b) { return a.id < b.id; });
  write_index(s, records, nullptr, &removed);
  s.records = std::move(records);
  s.removed = std::move(removed);
  // A kill from here on leaves files of a removed model (its tombstone is in the index): the
  // next writer open removes them.
  remove_path(s.model_file(id));
  remove_path(s.parts_dir(id));
  fsync_dir(s.dir);
}

void Store::grow(const graph::Graph& graph, const probe::ProbeSet& probe) {
  Impl& s = *impl_;
  s.require_writable("grow the store");
  check_probe_matches(graph, probe, s.path);
  for (const auto& node : s.graph.nodes()) {
    if (graph.index_of(node.wnid) < 0) {
      MLL_THROW(DataError, s.path, ": the new graph lacks node ", node.wnid, " (", node.name,
                "); a store only grows");
    }
  }
  if (probe.per_node != s.probe.per_node || probe.seed != s.probe.seed) {
    MLL_THROW(DataError, s.path, ": the new probe set was sampled with per_node ", probe.per_node,
              " seed ", probe.seed, ", the store's with per_node ", s.probe.per_node, " seed ",
              s.probe.seed);
  }
  if (probe.image_count() < s.probe.image_count()) {
    MLL_THROW(DataError, s.path, ": the new probe set has fewer images (", probe.image_count(),
              ") than the store (", s.probe.image_count(), ")");
  }
  for (std::size_t i = 0; i < s.probe.image_count(); ++i) {
    if (probe.image_paths[i] != s.probe.image_paths[i] ||
        probe.image_sizes[i] != s.probe.image_sizes[i]) {
      MLL_THROW(DataError, s.path, ": image ", i, " differs (", s.probe.image_paths[i], " -> ",
                probe.image_paths[i], "); the new probe set must extend the old one");
    }
  }
  if (graph.content_hash() == s.graph.content_hash() && probe.content_hash() == s.probe_hash) {
    return;
  }
  std::vector<std::string> captions = s.captions;
  std::vector<std::int64_t> node_caption = extend_captions(graph, captions);
  // Finished files keep their rows; the labels describe the old graph, so each model is pending
  // until finish_model has run on the grown tables.
  std::vector<ModelRecord> records = s.records;
  for (auto& r : records) {
    if (r.status == ModelStatus::kDone) r.status = ModelStatus::kPending;
  }
  const Tables tables{&graph, &probe, &captions, &node_caption};
  write_index(s, records, &tables);
  s.graph = graph;
  s.probe = probe;
  s.probe_hash = probe.content_hash();
  s.captions = std::move(captions);
  s.node_caption = std::move(node_caption);
  s.records = std::move(records);
}

// ---------------------------------------------------------------------------------------------
// Store: reading

namespace {

Matrix to_matrix(const std::vector<std::uint16_t>& bits, std::int64_t rows, std::int64_t dim) {
  Matrix m;
  m.rows = rows;
  m.cols = dim;
  m.values.resize(bits.size());
  half_to_float_n(bits.data(), bits.size(), m.values.data());
  return m;
}

h5::File open_finished(const Store::Impl& s, const std::string& id) {
  const ModelRecord& r = s.record(id);
  if (r.finished_utc.empty()) {
    MLL_THROW(DataError, s.path, ": model ", id, " has not been finished (status ",
              to_string(r.status), ")");
  }
  return s.open_file(s.model_file(id));
}

}  // namespace

Matrix Store::read_text_embeddings(const std::string& id) const {
  std::int64_t dim = 0;
  const std::int64_t rows = impl_->total(UnitKind::kText);
  const auto bits = impl_->read_rows(id, UnitKind::kText, 0, rows, &dim);
  return to_matrix(bits, rows, dim);
}

Matrix Store::read_image_embeddings(const std::string& id, std::int64_t begin,
                                    std::int64_t end) const {
  std::int64_t dim = 0;
  const auto bits = impl_->read_rows(id, UnitKind::kImage, begin, end, &dim);
  return to_matrix(bits, end - begin, dim);
}

void Store::check_files(const std::vector<std::string>& ids) const {
  std::vector<std::string> files;
  for (const auto& id : ids) {
    impl_->record(id);
    std::error_code ec;
    const std::string file = impl_->model_file(id);
    if (stdfs::exists(file, ec) && !impl_->seal_checked(file)) files.push_back(file);
    for (const auto& part : impl_->list_parts(id)) {
      if (!impl_->seal_checked(part.file)) files.push_back(part.file);
    }
  }
  std::vector<std::string> problems(files.size());
  std::vector<FileStamp> stamps(files.size());
  check_seals_at_once(files, problems, stamps);
  for (std::size_t k = 0; k < files.size(); ++k) {
    if (!problems[k].empty()) throw DataError(problems[k]);
    impl_->checked[files[k]] = stamps[k];
  }
}

Matrix Store::read_image_rows(const std::string& id, const std::vector<std::int64_t>& ids) const {
  return impl_->read_selected_rows(id, UnitKind::kImage, ids);
}

Matrix Store::read_text_rows(const std::string& id, const std::vector<std::int64_t>& ids) const {
  return impl_->read_selected_rows(id, UnitKind::kText, ids);
}

ModelLabels Store::read_labels(const std::string& id) const {
  const h5::File f = open_finished(*impl_, id);
  const h5::Group g = f.root().open_group("labels");
  ModelLabels labels;
  labels.node_top1 = g.read<float>("node_top1");
  labels.node_confusion = g.read<std::int32_t>("node_confusion");
  labels.subtree_top1 = g.read<float>("subtree_top1");
  return labels;
}

ModelInfo Store::model_info(const std::string& id) const {
  const h5::File f = open_finished(*impl_, id);
  const h5::Group root = f.root();
  ModelInfo m;
  m.id = root.attr_string("model_id");
  m.dim = root.attr_int("dim");
  m.logit_scale = root.attr_double("logit_scale");
  m.text_rows = static_cast<std::int64_t>(root.dims("text_embeddings").at(0));
  m.image_rows = static_cast<std::int64_t>(root.dims("image_embeddings").at(0));
  m.model_sha256 = root.attr_string("model_sha256");
  m.sidecar_json = root.attr_string("sidecar_json");
  m.config_json = root.attr_string("config_json");
  if (root.has_attr("parity_json")) m.parity_json = root.attr_string("parity_json");
  m.mll_version = root.attr_string("mll_version");
  m.started_utc = root.attr_string("started_utc");
  m.finished_utc = root.attr_string("finished_utc");
  m.graph_hash = root.attr_string("graph_hash");
  m.probe_hash = root.attr_string("probe_hash");
  return m;
}

VerifyReport Store::verify() const { return impl_->verify(); }

}  // namespace mll::store
