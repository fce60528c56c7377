#include "mll/archive/image_ref.hpp"

#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "mll/archive/tar.hpp"
#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"

namespace mll::archive {
namespace {

constexpr int kOffsetDigits = 12;

}  // namespace

std::string member_ref(const std::string& archive, std::int64_t offset, const std::string& member) {
  std::string digits = std::to_string(offset);
  if (digits.size() < kOffsetDigits) digits.insert(0, kOffsetDigits - digits.size(), '0');
  return cat(archive, ":", digits, ":", member);
}

std::optional<MemberRef> parse_member_ref(const std::string& ref) {
  static constexpr std::string_view kTar = ".tar:";
  for (auto at = ref.find(kTar); at != std::string::npos; at = ref.find(kTar, at + 1)) {
    const std::size_t first = at + kTar.size();
    std::size_t end = first;
    while (end < ref.size() && std::isdigit(static_cast<unsigned char>(ref[end]))) ++end;
    // 18 digits at most: the value fits in int64.
    if (end == first || end - first > 18 || end >= ref.size() || ref[end] != ':' ||
        end + 1 == ref.size()) {
      continue;
    }
    return MemberRef{ref.substr(0, at + 4), std::stoll(ref.substr(first, end - first)),
                     ref.substr(end + 1)};
  }
  return std::nullopt;
}

std::string read_image_bytes(const std::string& ref) {
  const auto member = parse_member_ref(ref);
  if (!member) return fs::read_file(ref);
  return TarReader(member->archive).read(member->offset, member->member);
}

FileStamp stamp(const std::string& ref) {
  const auto member = parse_member_ref(ref);
  const std::string& file = member ? member->archive : ref;
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    MLL_THROW(DataError, ref, ": image cannot be read: ", std::strerror(errno));
  }
  return {static_cast<std::int64_t>(st.st_size),
          static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

ImageReader::ImageReader() = default;
ImageReader::~ImageReader() = default;

std::string ImageReader::read(const std::string& ref) {
  const auto member = parse_member_ref(ref);
  if (!member) return fs::read_file(ref);
  if (!open_ || open_->path() != member->archive) {
    open_.reset();  // one descriptor at a time
    open_ = std::make_unique<TarReader>(member->archive);
  }
  return open_->read(member->offset, member->member);
}

}  // namespace mll::archive
