#include "mll/feed/crop_cache.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

#include "mll/archive/image_ref.hpp"
#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/core/hash.hpp"
#include "mll/core/log.hpp"
#include "mll/core/version.hpp"
#include "mll/feed/inputs.hpp"

namespace mll::feed {
namespace {

namespace stdfs = std::filesystem;

// Version 2 added a digest per crop (SHA-256's first 8 bytes), version 3 makes it the XXH3 64-bit
// checksum (the same damage check at a fraction of the cost: every crop read is checked);
// files of earlier versions are stale (their magic differs) and replaced when decoded again.
constexpr std::array<char, 8> kMagic = {'M', 'L', 'L', 'C', 'R', 'O', 'P', '3'};
constexpr std::size_t kDigestBytes = 8;  // per crop: its XXH3-64 checksum

// The file header: magic, then little-endian u64 fields, then the 32-byte fingerprint. A table
// of one digest per row follows it, then the crops.
struct Header {
  std::uint64_t begin = 0, end = 0, height = 0, width = 0;
  std::array<unsigned char, 32> fingerprint{};
};
constexpr std::size_t kHeaderBytes = 8 + 4 * 8 + 32;

std::array<unsigned char, kHeaderBytes> encode(const Header& h) {
  std::array<unsigned char, kHeaderBytes> out{};
  std::memcpy(out.data(), kMagic.data(), kMagic.size());
  const std::uint64_t fields[] = {h.begin, h.end, h.height, h.width};
  for (int f = 0; f < 4; ++f) {
    for (int b = 0; b < 8; ++b)
      out[8 + f * 8 + b] = static_cast<unsigned char>(fields[f] >> (8 * b));
  }
  std::memcpy(out.data() + 40, h.fingerprint.data(), 32);
  return out;
}

std::array<unsigned char, 32> unhex(const std::string& hex) {
  std::array<unsigned char, 32> out{};
  for (std::size_t i = 0; i < 32; ++i) {
    out[i] = static_cast<unsigned char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  }
  return out;
}

// A POSIX file descriptor, closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.fd_;
      other.fd_ = -1;
    }
    return *this;
  }
  int get() const noexcept { return fd_; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Closes and reports a failed close (deferred write errors on some file systems).
  void close_checked(const std::string& path) {
    const int fd = fd_;
    fd_ = -1;
    if (fd >= 0 && ::close(fd) != 0)
      MLL_THROW(IoError, path, ": close failed: ", std::strerror(errno));
  }

 private:
  int fd_ = -1;
};

void pread_all(int fd, void* data, std::size_t bytes, std::uint64_t offset,
               const std::string& path) {
  auto* p = static_cast<unsigned char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::pread(fd, p, bytes, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      MLL_THROW(IoError, path, ": read failed: ", n < 0 ? std::strerror(errno) : "short file");
    p += n;
    bytes -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
}

void pwrite_all(int fd, const void* data, std::size_t bytes, std::uint64_t offset,
                const std::string& path) {
  const auto* p = static_cast<const unsigned char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::pwrite(fd, p, bytes, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      MLL_THROW(IoError, path, ": write failed: ", n < 0 ? std::strerror(errno) : "no progress");
    }
    p += n;
    bytes -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
}

std::array<unsigned char, kDigestBytes> crop_digest(const std::uint8_t* crop, std::size_t bytes) {
  const std::uint64_t digest = checksum64(crop, bytes);
  std::array<unsigned char, kDigestBytes> out{};  // big-endian
  for (std::size_t i = 0; i < kDigestBytes; ++i) {
    out[i] = static_cast<unsigned char>(digest >> (8 * (kDigestBytes - 1 - i)));
  }
  return out;
}

// One folder per config, named by the config's hash (the key itself is long and has spaces).
stdfs::path config_folder(const std::string& dir, const image::PreprocessSpec& spec) {
  return stdfs::path(dir) / Sha256().update(preprocess_key(spec)).hex().substr(0, 16);
}

// Whether `name` is a shard file this cache writes ("<begin>-<end>.crops") or its temporary.
bool is_cache_file(const std::string& name) {
  const auto dash = name.find('-'), dot = name.find(".crops");
  if (dash == std::string::npos || dot == std::string::npos || dash == 0 || dot <= dash + 1) {
    return false;
  }
  const auto digits = [&](std::size_t b, std::size_t e) {
    return name.substr(b, e - b).find_first_not_of("0123456789") == std::string::npos;
  };
  const std::string rest = name.substr(dot + 6);
  return digits(0, dash) && digits(dash + 1, dot) && (rest.empty() || rest.rfind(".tmp.", 0) == 0);
}

// Removes `<name>.tmp.<host>.<pid>` files in `folder` written on this machine by a process that
// is gone (a killed run). The file of a live writer (another rank sharing the cache) and every
// file written on another machine (whose processes cannot be seen from here: the cache may be
// on a shared file system) are left alone.
void remove_stale_temporaries(const stdfs::path& folder) {
  const std::string mine = ".tmp." + fs::host_name() + ".";
  std::error_code ec;
  for (const auto& entry : stdfs::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    const auto at = name.rfind(mine);
    if (at == std::string::npos || at + mine.size() >= name.size()) continue;
    const std::string digits = name.substr(at + mine.size());
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::error_code removed;
    stdfs::remove(entry.path(), removed);
    if (!removed)
      log::info("image cache: removed ", entry.path().string(), " left by a killed run");
  }
}

}  // namespace

struct CropCache::Impl {
  std::string path;
  Header header;
  std::size_t crop_bytes = 0;
  Fd reader;
  bool hit = false;
  std::optional<fs::AtomicOutput> output;
  Fd writer;
  std::atomic<std::int64_t> written{0};

  std::uint64_t offset(std::int64_t row) const {
    if (row < static_cast<std::int64_t>(header.begin) ||
        row >= static_cast<std::int64_t>(header.end)) {
      MLL_THROW(InternalError, path, ": row ", row, " is outside the cached rows");
    }
    return kHeaderBytes + rows() * kDigestBytes +
           (static_cast<std::uint64_t>(row) - header.begin) * crop_bytes;
  }
  std::uint64_t rows() const { return header.end - header.begin; }
  std::uint64_t digest_offset(std::int64_t row) const {
    return kHeaderBytes + (static_cast<std::uint64_t>(row) - header.begin) * kDigestBytes;
  }

  void try_open() {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return;  // not cached yet
    std::array<unsigned char, kHeaderBytes> stored{};
    struct stat st {};
    const std::uint64_t expected_size = kHeaderBytes + rows() * (kDigestBytes + crop_bytes);
    bool valid =
        ::fstat(fd.get(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) == expected_size;
    if (valid) {
      try {
        pread_all(fd.get(), stored.data(), stored.size(), 0, path);
        valid = stored == encode(header);
      } catch (const Error&) {
        valid = false;
      }
    }
    if (!valid) {
      log::warn(path, ": stale or foreign image cache file (images or preprocessing changed); ",
                "decoding instead");
      return;
    }
    reader = std::move(fd);
    hit = true;
  }
};

CropCache::CropCache(const std::string& dir, const image::PreprocessSpec& spec, std::int64_t begin,
                     std::int64_t end, const std::vector<std::string>& paths)
    : impl_(std::make_unique<Impl>()) {
  MLL_CHECK(begin <= end && paths.size() == static_cast<std::size_t>(end - begin),
            "crop cache: ", paths.size(), " paths for rows [", begin, ", ", end, ")");
  const std::string key = preprocess_key(spec);
  Sha256 fingerprint;
  // The mll version too: a later release may decode or resample differently.
  fingerprint.update_field(cat("mll crop cache 1, mll ", version()));
  fingerprint.update_field(key);
  for (const auto& p : paths) {
    // A shard member is stamped with its shard's size and time: rewriting the shard
    // invalidates the crops of all its members.
    const auto file = archive::stamp(p);
    fingerprint.update_field(p);
    fingerprint.update_u64(static_cast<std::uint64_t>(file.size));
    fingerprint.update_u64(static_cast<std::uint64_t>(file.mtime_ns));
  }
  impl_->header.begin = static_cast<std::uint64_t>(begin);
  impl_->header.end = static_cast<std::uint64_t>(end);
  impl_->header.height = static_cast<std::uint64_t>(spec.height);
  impl_->header.width = static_cast<std::uint64_t>(spec.width);
  impl_->header.fingerprint = unhex(fingerprint.hex());
  impl_->crop_bytes =
      static_cast<std::size_t>(spec.height) * static_cast<std::size_t>(spec.width) * 3;

  const stdfs::path folder = config_folder(dir, spec);
  std::error_code ec;
  stdfs::create_directories(folder, ec);
  if (ec)
    MLL_THROW(UsageError, "--image-cache ", dir, ": cannot create ", folder.string(), ": ",
              ec.message());
  impl_->path = (folder / (std::to_string(begin) + "-" + std::to_string(end) + ".crops")).string();
  remove_stale_temporaries(folder);
  impl_->try_open();
}

CropCache::~CropCache() = default;

std::size_t CropCache::remove_config(const std::string& dir, const image::PreprocessSpec& spec) {
  const stdfs::path folder = config_folder(dir, spec);
  std::size_t removed = 0;
  std::error_code ec;
  for (const auto& entry : stdfs::directory_iterator(folder, ec)) {
    std::error_code gone;
    if (is_cache_file(entry.path().filename().string()) && stdfs::remove(entry.path(), gone)) {
      ++removed;
    }
  }
  stdfs::remove(folder, ec);  // only when empty
  stdfs::remove(dir, ec);
  return removed;
}

bool CropCache::hit() const noexcept { return impl_->hit; }
const std::string& CropCache::path() const noexcept { return impl_->path; }

void CropCache::read(std::int64_t row, std::uint8_t* out) const {
  MLL_CHECK(impl_->hit, "crop cache read without a hit");
  pread_all(impl_->reader.get(), out, impl_->crop_bytes, impl_->offset(row), impl_->path);
  std::array<unsigned char, kDigestBytes> stored{};
  pread_all(impl_->reader.get(), stored.data(), stored.size(), impl_->digest_offset(row),
            impl_->path);
  if (stored != crop_digest(out, impl_->crop_bytes)) {
    MLL_THROW(DataError, impl_->path, ": crop of row ", row, " does not match its digest");
  }
}

void CropCache::start_writing() {
  MLL_CHECK(!impl_->hit && !impl_->output, "crop cache: already cached or being written");
  impl_->output.emplace(impl_->path, fs::AtomicOutput::Temp::kHostAndPid);
  const std::string& temp = impl_->output->temp_path();
  impl_->writer = Fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (impl_->writer.get() < 0) MLL_THROW(IoError, temp, ": cannot create: ", std::strerror(errno));
  const auto header = encode(impl_->header);
  pwrite_all(impl_->writer.get(), header.data(), header.size(), 0, temp);
  impl_->written = 0;
}

void CropCache::write(std::int64_t row, const image::RgbImage& crop) {
  MLL_CHECK(impl_->output, "crop cache write before start_writing");
  MLL_CHECK(crop.size_bytes() == impl_->crop_bytes, "crop cache: crop of ", crop.size_bytes(),
            " bytes, expected ", impl_->crop_bytes);
  pwrite_all(impl_->writer.get(), crop.data(), impl_->crop_bytes, impl_->offset(row),
             impl_->output->temp_path());
  const auto digest = crop_digest(crop.data(), impl_->crop_bytes);
  pwrite_all(impl_->writer.get(), digest.data(), digest.size(), impl_->digest_offset(row),
             impl_->output->temp_path());
  ++impl_->written;
}

void CropCache::finish_writing() {
  if (!impl_->output) return;
  const bool complete =
      impl_->written.load() == static_cast<std::int64_t>(impl_->header.end - impl_->header.begin);
  impl_->writer.close_checked(impl_->output->temp_path());
  if (complete) impl_->output->commit();
  impl_->output.reset();  // removes the temporary file when it was not committed
}

}  // namespace mll::feed
