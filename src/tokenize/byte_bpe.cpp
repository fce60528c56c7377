#include "byte_bpe.hpp"

#include <zlib.h>

#include <vector>

#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"

namespace mll::tokenize::detail {
namespace {

// Closes a gzFile on every path; the explicit close() reports errors found only at the end.
class GzipFile {
 public:
  explicit GzipFile(const std::string& path) : file_(gzopen(path.c_str(), "rb")) {}
  ~GzipFile() {
    if (file_ != nullptr) gzclose(file_);
  }
  GzipFile(const GzipFile&) = delete;
  GzipFile& operator=(const GzipFile&) = delete;

  gzFile get() const noexcept { return file_; }
  int close() noexcept {
    const int rc = gzclose(file_);
    file_ = nullptr;
    return rc;
  }

 private:
  gzFile file_;
};

}  // namespace

ByteAlphabet byte_alphabet() {
  ByteAlphabet a;
  std::vector<int> order;
  auto printable = [](int b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  for (int b = 0; b < 256; ++b) {
    if (printable(b)) order.push_back(b);
  }
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    if (!printable(b)) {
      order.push_back(b);
      a.char_of[static_cast<std::size_t>(b)] = static_cast<char32_t>(256 + extra++);
    } else {
      a.char_of[static_cast<std::size_t>(b)] = static_cast<char32_t>(b);
    }
  }
  for (std::size_t i = 0; i < order.size(); ++i) {
    a.position[static_cast<std::size_t>(order[i])] = static_cast<int>(i);
  }
  return a;
}

std::string read_maybe_gzip(const std::string& path, const std::string& what) {
  fs::require_input_file(path, what);
  GzipFile f(path);
  if (f.get() == nullptr) MLL_THROW(DataError, path, ": cannot open ", what);
  std::string data;
  std::array<char, 1 << 16> buf;
  int n = 0;
  while ((n = gzread(f.get(), buf.data(), static_cast<unsigned>(buf.size()))) > 0) {
    data.append(buf.data(), static_cast<std::size_t>(n));
  }
  int err = Z_OK;
  const std::string message = n < 0 ? gzerror(f.get(), &err) : "";
  const int close_rc = f.close();
  if (n < 0 || close_rc != Z_OK) {
    MLL_THROW(DataError, path, ": ", what, " is corrupt or truncated (zlib: ",
              message.empty() ? std::string("error ") + std::to_string(close_rc) : message, ")");
  }
  return data;
}

void apply_merges(std::vector<std::int32_t>& word, const MergeTable& merges) {
  std::vector<std::int32_t> next;
  while (word.size() > 1) {
    const Merge* best = nullptr;
    std::uint64_t best_key = 0;
    for (std::size_t i = 0; i + 1 < word.size(); ++i) {
      const std::uint64_t key = pair_key(word[i], word[i + 1]);
      const auto it = merges.find(key);
      if (it != merges.end() && (best == nullptr || it->second.rank < best->rank)) {
        best = &it->second;
        best_key = key;
      }
    }
    if (best == nullptr) break;
    next.clear();
    for (std::size_t i = 0; i < word.size(); ++i) {
      if (i + 1 < word.size() && pair_key(word[i], word[i + 1]) == best_key) {
        next.push_back(best->merged);
        ++i;
      } else {
        next.push_back(word[i]);
      }
    }
    word.swap(next);
  }
}

}  // namespace mll::tokenize::detail
