#include "seal.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "mll/core/error.hpp"
#include "mll/core/hash.hpp"

namespace mll::store {
namespace {

constexpr char kMagic[] = "MLL-SEAL 1\n";
constexpr unsigned char kHdf5Signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

// A file descriptor closed on every path.
class Fd {
 public:
  Fd(const std::string& path, int flags) : fd_(::open(path.c_str(), flags | O_CLOEXEC)) {
    if (fd_ < 0) MLL_THROW(IoError, path, ": cannot open: ", std::strerror(errno));
  }
  ~Fd() { ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

std::uint64_t size_of(const Fd& fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    MLL_THROW(IoError, path, ": cannot stat: ", std::strerror(errno));
  return static_cast<std::uint64_t>(st.st_size);
}

// SHA-256 of bytes [from, end) of the file.
std::string digest_from(const Fd& fd, const std::string& path, std::uint64_t from) {
  Sha256 sha;
  std::vector<char> buffer(1 << 20);
  auto at = static_cast<off_t>(from);
  for (;;) {
    const ssize_t n = ::pread(fd.get(), buffer.data(), buffer.size(), at);
    if (n < 0) {
      if (errno == EINTR) continue;
      MLL_THROW(IoError, path, ": cannot read: ", std::strerror(errno));
    }
    if (n == 0) break;
    sha.update(buffer.data(), static_cast<std::size_t>(n));
    at += n;
  }
  return sha.hex();
}

std::array<char, kSealBytes> seal_block(const std::string& digest, std::uint64_t length) {
  std::array<char, kSealBytes> block{};
  const std::string text =
      std::string(kMagic) + "sha256 " + digest + "\nsize " + std::to_string(length) + "\n";
  std::memcpy(block.data(), text.data(), text.size());
  return block;
}

void read_exactly(const Fd& fd, const std::string& path, char* out, std::size_t n) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t got = ::pread(fd.get(), out + done, n - done, static_cast<off_t>(done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) MLL_THROW(IoError, path, ": cannot read: ", std::strerror(errno));
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
}

}  // namespace

void write_seal(const std::string& path) {
  const Fd fd(path, O_RDWR);
  const std::uint64_t size = size_of(fd, path);
  if (size <= kSealBytes) MLL_THROW(InternalError, path, ": too short to carry a seal");
  const auto block = seal_block(digest_from(fd, path, kSealBytes), size - kSealBytes);
  if (::pwrite(fd.get(), block.data(), block.size(), 0) != static_cast<ssize_t>(block.size())) {
    MLL_THROW(IoError, path, ": cannot write its seal: ", std::strerror(errno));
  }
}

SealState check_seal(const std::string& path) {
  const Fd fd(path, O_RDONLY);
  const std::uint64_t size = size_of(fd, path);
  std::array<char, kSealBytes> head{};
  read_exactly(fd, path, head.data(), std::min<std::uint64_t>(size, kSealBytes));
  if (size >= sizeof kHdf5Signature &&
      std::memcmp(head.data(), kHdf5Signature, sizeof kHdf5Signature) == 0) {
    return SealState::kUnsealed;
  }
  if (size < kSealBytes || std::memcmp(head.data(), kMagic, sizeof kMagic - 1) != 0) {
    MLL_THROW(DataError, path, ": corrupt (no valid seal at its start: ", size, " bytes)");
  }
  // The block must be exactly what write_seal writes for this file's length and digest.
  const char* digest_at = head.data() + sizeof kMagic - 1 + 7;  // after "sha256 "
  const std::string digest(digest_at, 64);
  const std::uint64_t length = size - kSealBytes;
  if (seal_block(digest, length) != head) {
    MLL_THROW(DataError, path, ": corrupt (its seal does not describe a file of ", length,
              " bytes: truncated, grown or damaged)");
  }
  const std::string actual = digest_from(fd, path, kSealBytes);
  if (actual != digest) {
    MLL_THROW(DataError, path, ": corrupt (SHA-256 ", actual.substr(0, 16), "..., sealed as ",
              digest.substr(0, 16), "...)");
  }
  return SealState::kSealed;
}

FileStamp stamp_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    MLL_THROW(IoError, path, ": cannot stat: ", std::strerror(errno));
  return {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino),
          static_cast<std::uint64_t>(st.st_size),
          static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

}  // namespace mll::store
