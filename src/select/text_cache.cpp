#include "mll/select/text_cache.hpp"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>

#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/core/hash.hpp"
#include "mll/core/log.hpp"
#include "mll/core/model_id.hpp"

namespace mll::select {
namespace {

constexpr const char* kMagic = "MLL-TEXT-CACHE 1\n";

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xffu));
}

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xffu));
}

void put_field(std::string& out, const std::string& text) {
  put_u32(out, static_cast<std::uint32_t>(text.size()));
  out += text;
}

// Reads the payload front to back; every read is bounds-checked, so a payload that passed its
// checksum but is not ours (another version's layout) still cannot read past its end.
class Reader {
 public:
  explicit Reader(const std::string& bytes) : bytes_(bytes) {}

  std::optional<std::uint64_t> uint(int width) {
    if (bytes_.size() - pos_ < static_cast<std::size_t>(width)) return std::nullopt;
    std::uint64_t v = 0;
    for (int i = 0; i < width; ++i) {
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes_[pos_ + i])) << (8 * i);
    }
    pos_ += static_cast<std::size_t>(width);
    return v;
  }
  std::optional<std::string> field() {
    const auto n = uint(4);
    if (!n || bytes_.size() - pos_ < *n) return std::nullopt;
    std::string out = bytes_.substr(pos_, *n);
    pos_ += *n;
    return out;
  }
  std::optional<float> real() {
    const auto bits = uint(4);
    if (!bits) return std::nullopt;
    const auto b = static_cast<std::uint32_t>(*bits);
    float f;
    std::memcpy(&f, &b, sizeof f);
    return f;
  }
  bool done() const noexcept { return pos_ == bytes_.size(); }

 private:
  const std::string& bytes_;
  std::size_t pos_ = 0;
};

// Splits `text` after its three header lines; returns the payload, or why it is not a cache file.
std::optional<std::string> checked_payload(const std::string& text, std::string* why) {
  const std::size_t magic = std::strlen(kMagic);
  if (text.compare(0, magic, kMagic) != 0) {
    *why = "no MLL-TEXT-CACHE 1 header";
    return std::nullopt;
  }
  const std::size_t l2 = text.find('\n', magic);
  const std::size_t l3 = l2 == std::string::npos ? l2 : text.find('\n', l2 + 1);
  if (l3 == std::string::npos || text.compare(magic, 7, "sha256 ") != 0 ||
      text.compare(l2 + 1, 5, "size ") != 0) {
    *why = "damaged header";
    return std::nullopt;
  }
  const std::string digest = text.substr(magic + 7, l2 - magic - 7);
  const std::string size_text = text.substr(l2 + 6, l3 - l2 - 6);
  if (size_text.empty() || size_text.size() > 19 ||
      size_text.find_first_not_of("0123456789") != std::string::npos) {
    *why = "damaged header";
    return std::nullopt;
  }
  const std::uint64_t size = std::stoull(size_text);
  if (text.size() - (l3 + 1) != size) {
    *why = "its size is " + std::to_string(text.size() - (l3 + 1)) + " bytes, the header says " +
           size_text + " (truncated or grown)";
    return std::nullopt;
  }
  std::string payload = text.substr(l3 + 1);
  if (Sha256().update(payload).hex() != digest) {
    *why = "checksum mismatch";
    return std::nullopt;
  }
  return payload;
}

}  // namespace

std::string default_text_cache_dir(const std::string& store_path) {
  return store_path + ".text-cache";
}

TextCache::TextCache(std::string dir, TextCacheKey key)
    : dir_(std::move(dir)), key_(std::move(key)) {
  if (!dir_.empty()) load();
}

std::string TextCache::file() const {
  return dir_.empty() ? std::string() : dir_ + "/" + model_file_stem(key_.model_id) + ".textcache";
}

std::string TextCache::encode(const TextCacheKey& key, std::int64_t dim,
                              const std::map<std::string, std::vector<float>>& rows) {
  std::string payload;
  put_field(payload, key.model_id);
  put_field(payload, key.model_sha256);
  put_field(payload, key.tokenizer);
  put_u32(payload, static_cast<std::uint32_t>(std::max<std::int64_t>(dim, 0)));
  put_u64(payload, rows.size());
  for (const auto& [text, row] : rows) {
    put_field(payload, text);
    for (const float f : row) {
      std::uint32_t bits;
      std::memcpy(&bits, &f, sizeof bits);
      put_u32(payload, bits);
    }
  }
  return std::string(kMagic) + "sha256 " + Sha256().update(payload).hex() + "\nsize " +
         std::to_string(payload.size()) + "\n" + payload;
}

void TextCache::load() {
  const std::string path = file();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return;
  std::string text;
  try {
    text = fs::read_file(path);
  } catch (const std::exception& e) {
    log::warn("text cache not read (", e.what(), "): its texts are embedded again");
    return;
  }
  std::string why;
  const auto payload = checked_payload(text, &why);
  const auto corrupt = [&](const std::string& what) {
    log::warn(path, ": corrupt text cache (", what, "): ignored; it is rewritten");
  };
  if (!payload) return corrupt(why);
  Reader in(*payload);
  const auto id = in.field(), sha = in.field(), tokenizer = in.field();
  const auto dim = in.uint(4), count = in.uint(8);
  if (!id || !sha || !tokenizer || !dim || !count) return corrupt("short payload");
  // Each text takes at least 4 + 4 * dim bytes: a count or width the payload cannot hold is not
  // allocated for.
  if (*dim > (1u << 16) || *count > payload->size() / (4 + 4 * *dim)) {
    return corrupt("impossible sizes");
  }
  if (*id != key_.model_id || *sha != key_.model_sha256 || *tokenizer != key_.tokenizer) {
    // Vectors of another model file (the model was relabeled) or tokenizer: not ours, and
    // replaced by the next save.
    log::debug(path, ": text cache of another model version (", *sha, "): ignored");
    return;
  }
  std::map<std::string, std::vector<float>> rows;
  for (std::uint64_t i = 0; i < *count; ++i) {
    auto entry = in.field();
    if (!entry) return corrupt("short payload");
    std::vector<float> row(static_cast<std::size_t>(*dim));
    for (auto& f : row) {
      const auto v = in.real();
      if (!v) return corrupt("short payload");
      if (!std::isfinite(*v)) return corrupt("a value is not finite");
      f = *v;
    }
    rows.emplace(std::move(*entry), std::move(row));
  }
  if (!in.done() || rows.size() != *count) return corrupt("unexpected bytes after the last text");
  dim_ = static_cast<std::int64_t>(*dim);
  rows_ = std::move(rows);
}

const std::vector<float>* TextCache::find(const std::string& text) const {
  const auto it = rows_.find(text);
  return it == rows_.end() ? nullptr : &it->second;
}

void TextCache::add(const std::string& text, std::vector<float> row) {
  if (dim_ < 0) dim_ = static_cast<std::int64_t>(row.size());
  if (static_cast<std::int64_t>(row.size()) != dim_) {
    log::warn("text cache of ", key_.model_id, ": a vector of width ", row.size(), " not ", dim_,
              ": not cached");
    return;
  }
  rows_[text] = std::move(row);
  changed_ = true;
}

void TextCache::save() const {
  if (dir_.empty() || !changed_) return;
  try {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) MLL_THROW(IoError, dir_, ": ", ec.message());
    const std::string bytes = encode(key_, dim_, rows_);
    // Tasks may be selected on several machines at once against one shared store.
    fs::AtomicOutput out(file(), fs::AtomicOutput::Temp::kHostAndPid);
    {
      std::ofstream stream(out.temp_path(), std::ios::binary | std::ios::trunc);
      if (!stream) MLL_THROW(IoError, out.temp_path(), ": cannot write");
      stream.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      stream.flush();
      if (!stream) MLL_THROW(IoError, out.temp_path(), ": write failed");
    }
    out.commit();
  } catch (const std::exception& e) {
    log::warn("class-text embeddings not cached (", e.what(),
              "): the next selection embeds them again");
  }
}

}  // namespace mll::select
