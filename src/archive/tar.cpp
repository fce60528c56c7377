// libarchive behind mll::archive: the only file that includes archive.h.
//
// Every read goes through our own callbacks over pread() from a start offset rather than
// archive_read_open_filename(): that is what lets a reader begin at a recorded member offset, and
// the skip callback makes skipping an unwanted member's data a change of offset, not a read.
#include "mll/archive/tar.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"

namespace mll::archive {
namespace {

// Listing reads headers and skips data: small blocks keep it from reading much of the images.
constexpr std::size_t kListBlock = 16 * 1024;
// Reading one member wants its data: larger blocks mean fewer calls.
constexpr std::size_t kReadBlock = 256 * 1024;

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.fd_;
      other.fd_ = -1;
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

struct ReadFree {
  void operator()(struct archive* a) const noexcept { archive_read_free(a); }
};
using ReadHandle = std::unique_ptr<struct archive, ReadFree>;

struct WriteFree {
  void operator()(struct archive* a) const noexcept { archive_write_free(a); }
};
using WriteHandle = std::unique_ptr<struct archive, WriteFree>;

struct EntryFree {
  void operator()(struct archive_entry* e) const noexcept { archive_entry_free(e); }
};

// The file as libarchive sees it: bytes from `position` on, read with pread.
struct Source {
  int fd = -1;
  std::int64_t position = 0;
  std::int64_t file_size = 0;
  std::vector<char>* buffer = nullptr;
};

la_ssize_t read_block(struct archive* a, void* client, const void** block) {
  auto* source = static_cast<Source*>(client);
  ssize_t n = 0;
  do {
    n = ::pread(source->fd, source->buffer->data(), source->buffer->size(), source->position);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    archive_set_error(a, errno, "read failed: %s", std::strerror(errno));
    return ARCHIVE_FATAL;
  }
  source->position += n;
  *block = source->buffer->data();
  return n;
}

// Never past the end: libarchive then reads what is missing and reports the truncation, instead
// of seeing a clean end of file at the next header.
la_int64_t skip_bytes(struct archive*, void* client, la_int64_t request) {
  auto* source = static_cast<Source*>(client);
  const la_int64_t skipped =
      std::max<la_int64_t>(0, std::min(request, source->file_size - source->position));
  source->position += skipped;
  return skipped;
}

const char* error_text(struct archive* a) {
  const char* text = archive_error_string(a);
  return text != nullptr ? text : "unknown libarchive error";
}

Fd open_input(const std::string& path, std::int64_t* size) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) MLL_THROW(DataError, path, ": shard not found");
    MLL_THROW(IoError, path, ": cannot open shard: ", std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    MLL_THROW(IoError, path, ": cannot stat: ", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) MLL_THROW(DataError, path, ": shard is not a regular file");
  *size = static_cast<std::int64_t>(st.st_size);
  return fd;
}

// A tar reader over `source`, which starts at a member's headers (or the archive's start).
ReadHandle open_reader(Source& source, const std::string& path) {
  ReadHandle a(archive_read_new());
  if (!a) MLL_THROW(IoError, path, ": libarchive cannot allocate a reader");
  // Tar alone and no decompression filter: offsets must be positions in the file.
  archive_read_support_format_tar(a.get());
  if (archive_read_open2(a.get(), &source, nullptr, read_block, skip_bytes, nullptr) !=
      ARCHIVE_OK) {
    MLL_THROW(DataError, path, ": not an uncompressed tar archive at byte ", source.position, " (",
              error_text(a.get()), ")");
  }
  return a;
}

// A header libarchive could read. ARCHIVE_RETRY (a damaged header it would skip over) is an
// error here: resynchronising would silently lose members of a shard.
bool usable(int status) { return status == ARCHIVE_OK || status == ARCHIVE_WARN; }

const char* entry_name(struct archive_entry* entry) {
  const char* name = archive_entry_pathname(entry);
  return name != nullptr ? name : archive_entry_pathname_utf8(entry);
}

// A regular file with data of its own (a hard link's data is another member's).
bool is_data_member(struct archive_entry* entry) {
  return archive_entry_filetype(entry) == AE_IFREG && archive_entry_hardlink(entry) == nullptr;
}

std::string read_data(struct archive* a, std::int64_t size, const std::string& where) {
  std::string bytes(static_cast<std::size_t>(size), '\0');
  std::size_t total = 0;
  while (total < bytes.size()) {
    const la_ssize_t n = archive_read_data(a, bytes.data() + total, bytes.size() - total);
    if (n < 0) MLL_THROW(DataError, where, ": ", error_text(a));
    if (n == 0) break;
    total += static_cast<std::size_t>(n);
  }
  if (total != bytes.size()) {
    MLL_THROW(DataError, where, ": truncated (", total, " of ", size, " bytes)");
  }
  return bytes;
}

std::string member_where(const std::string& path, const std::string& name, std::int64_t offset) {
  return cat(path, ": member ", name, " (at byte ", offset, ")");
}

}  // namespace

std::vector<Member> list_members(const std::string& path,
                                 const std::function<bool(const std::string&)>& want_bytes) {
  std::int64_t size = 0;
  const Fd fd = open_input(path, &size);
  std::vector<char> buffer(kListBlock);
  Source source{fd.get(), 0, size, &buffer};
  const ReadHandle a = open_reader(source, path);
  std::vector<Member> members;
  for (;;) {
    struct archive_entry* entry = nullptr;
    const int status = archive_read_next_header(a.get(), &entry);
    if (status == ARCHIVE_EOF) break;
    if (!usable(status)) {
      const std::string after = members.empty() ? std::string(" at its start")
                                                : cat(" after member ", members.back().name,
                                                      " (at byte ", members.back().offset, ")");
      MLL_THROW(DataError, path, ": corrupt tar archive", after, ": ", error_text(a.get()));
    }
    if (!is_data_member(entry)) continue;
    const char* name = entry_name(entry);
    const std::int64_t offset = archive_read_header_position(a.get());
    if (name == nullptr) {
      MLL_THROW(DataError, path, ": member at byte ", offset, " has no readable name");
    }
    Member member{name, offset, archive_entry_size(entry), {}};
    if (want_bytes && want_bytes(member.name)) {
      member.bytes = read_data(a.get(), member.size, member_where(path, member.name, offset));
    }
    members.push_back(std::move(member));
  }
  return members;
}

// ---------------------------------------------------------------------------------------------

struct TarReader::Impl {
  std::string path;
  Fd fd;
  std::int64_t size = 0;
  std::vector<char> buffer;
};

TarReader::TarReader(std::string path) : impl_(std::make_unique<Impl>()) {
  impl_->fd = open_input(path, &impl_->size);
  impl_->path = std::move(path);
  impl_->buffer.resize(kReadBlock);
}

TarReader::~TarReader() = default;
TarReader::TarReader(TarReader&&) noexcept = default;
TarReader& TarReader::operator=(TarReader&&) noexcept = default;

const std::string& TarReader::path() const noexcept { return impl_->path; }

std::string TarReader::read(std::int64_t offset, const std::string& name) {
  const std::string where = member_where(impl_->path, name, offset);
  if (offset < 0 || offset >= impl_->size) {
    MLL_THROW(DataError, where, ": beyond the end of the shard (", impl_->size,
              " bytes); the shard was rewritten since the offset was recorded");
  }
  // A fresh libarchive reader per member: it starts exactly at the member's headers, whatever
  // was read before. Members asked for in offset order still make the reads move forward only.
  Source source{impl_->fd.get(), offset, impl_->size, &impl_->buffer};
  ReadHandle a;
  try {
    a = open_reader(source, impl_->path);
  } catch (const DataError&) {
    MLL_THROW(DataError, where, ": no tar header there; the shard was rewritten since the offset ",
              "was recorded");
  }
  struct archive_entry* entry = nullptr;
  const int status = archive_read_next_header(a.get(), &entry);
  if (!usable(status)) {
    MLL_THROW(DataError, where, ": no member starts there (",
              status == ARCHIVE_EOF ? "end of archive" : error_text(a.get()),
              "); the shard was rewritten since the offset was recorded");
  }
  const char* found = entry_name(entry);
  if (found == nullptr || name != found || !is_data_member(entry)) {
    MLL_THROW(DataError, where, ": the member there is '", found != nullptr ? found : "?",
              "'; the shard was rewritten since the offset was recorded");
  }
  return read_data(a.get(), archive_entry_size(entry), where);
}

// ---------------------------------------------------------------------------------------------

struct TarWriter::Impl {
  std::optional<fs::AtomicOutput> output;
  WriteHandle a;
  bool open = false;
};

TarWriter::TarWriter(std::string path) : impl_(std::make_unique<Impl>()) {
  fs::check_output_path(path, true);
  impl_->output.emplace(path);
  impl_->a.reset(archive_write_new());
  if (!impl_->a) MLL_THROW(IoError, path, ": libarchive cannot allocate a writer");
  if (archive_write_set_format_pax_restricted(impl_->a.get()) != ARCHIVE_OK ||
      archive_write_open_filename(impl_->a.get(), impl_->output->temp_path().c_str()) !=
          ARCHIVE_OK) {
    MLL_THROW(IoError, impl_->output->temp_path(), ": cannot write: ", error_text(impl_->a.get()));
  }
  impl_->open = true;
}

TarWriter::~TarWriter() = default;

void TarWriter::add(const std::string& name, std::string_view bytes) {
  MLL_CHECK(impl_->open, "TarWriter::add after finish");
  std::unique_ptr<struct archive_entry, EntryFree> entry(archive_entry_new());
  if (!entry) MLL_THROW(IoError, impl_->output->path(), ": libarchive cannot allocate an entry");
  archive_entry_set_pathname(entry.get(), name.c_str());
  archive_entry_set_filetype(entry.get(), AE_IFREG);
  archive_entry_set_perm(entry.get(), 0644);
  archive_entry_set_size(entry.get(), static_cast<la_int64_t>(bytes.size()));
  // A fixed time: the same members give the same bytes, so a shard made twice is one shard.
  archive_entry_set_mtime(entry.get(), 0, 0);
  struct archive* a = impl_->a.get();
  if (archive_write_header(a, entry.get()) != ARCHIVE_OK) {
    MLL_THROW(IoError, impl_->output->path(), ": member ", name, ": ", error_text(a));
  }
  const la_ssize_t n = archive_write_data(a, bytes.data(), bytes.size());
  if (n < 0 || static_cast<std::size_t>(n) != bytes.size()) {
    MLL_THROW(IoError, impl_->output->path(), ": member ", name, ": ", error_text(a));
  }
}

void TarWriter::finish() {
  MLL_CHECK(impl_->open, "TarWriter::finish twice");
  impl_->open = false;
  if (archive_write_close(impl_->a.get()) != ARCHIVE_OK) {
    MLL_THROW(IoError, impl_->output->path(), ": ", error_text(impl_->a.get()));
  }
  impl_->output->commit();
}

}  // namespace mll::archive
