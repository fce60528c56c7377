// GPT-2's byte-level BPE, with GPT-2's id map or another one (RoBERTa's vocab.json) over the same
// merges.
#include "gpt2_bpe.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "byte_bpe.hpp"
#include "kinds.hpp"
#include "mll/core/error.hpp"
#include "text_clean.hpp"

namespace mll::tokenize::detail {
namespace {

enum class Kind { kLetter, kNumber, kSpace, kOther };

Kind kind_of(char32_t c) noexcept {
  if (is_regex_space(c)) return Kind::kSpace;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return Kind::kLetter;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return Kind::kNumber;
    default:
      return Kind::kOther;
  }
}

// The length of the piece GPT-2's pattern matches at i, trying its alternatives in order as the
// regex module does. RE2 cannot run the pattern: `\s+(?!\S)` needs a lookahead.
std::size_t piece_at(const std::u32string& t, const std::vector<Kind>& k, std::size_t i) {
  const std::size_t n = t.size();
  if (t[i] == U'\'') {
    for (const std::u32string_view c : {U"s", U"t", U"re", U"ve", U"m", U"ll", U"d"}) {
      if (std::u32string_view(t).substr(i + 1, c.size()) == c) return 1 + c.size();
    }
  }
  // ` ?X+` for letters, numbers and the rest: an optional ASCII space, then a run of one kind.
  const std::size_t start = t[i] == U' ' && i + 1 < n && k[i + 1] != Kind::kSpace ? i + 1 : i;
  if (k[start] != Kind::kSpace) {
    std::size_t j = start;
    while (j < n && k[j] == k[start]) ++j;
    return j - i;
  }
  // Whitespace: `\s+(?!\S)` keeps the run's last space for the word after it (backtracking one
  // character); a single space before a word, or a run at the end, is taken whole by `\s+`.
  std::size_t j = i;
  while (j < n && k[j] == Kind::kSpace) ++j;
  if (j < n && j - i >= 2) return j - 1 - i;
  return j - i;
}

// Symbols are numbered by this tokenizer (bytes first, then each merge's parts and result); the
// id map gives each its model id.
class Gpt2Bpe final : public Tokenizer {
 public:
  Gpt2Bpe(const TokenizerSpec& spec, const std::string& vocab_path, const std::string& merges_path)
      : Tokenizer(spec.context_length), lower_(spec.lower_case), vocab_path_(vocab_path) {
    load_merges(merges_path);
    load_ids(vocab_path);
  }

  const std::string& kind() const noexcept override { return kind_; }
  std::int64_t vocab_size() const noexcept override { return vocab_size_; }
  std::int64_t start_id() const noexcept override { return start_id_; }
  std::int64_t end_id() const noexcept override { return end_id_; }
  std::int64_t pad_id() const noexcept override { return pad_id_; }

  std::vector<std::int64_t> encode(std::string_view text) const override {
    // open_clip's HFTokenizer: whitespace_clean(basic_clean(text)), then the HF tokenizer.
    const std::string clean = clean_text(text, lower_);
    std::vector<std::int64_t> ids{start_id_};
    append_raw(clean, ids);
    ids.push_back(end_id_);
    return ids;
  }

  void append_raw(std::string_view text, std::vector<std::int64_t>& ids) const {
    for (const std::string_view piece : gpt2_split(text)) append_bpe(std::string(piece), ids);
  }

 private:
  std::int32_t symbol(const std::string& text) {
    const auto [it, added] = symbol_of_.emplace(text, static_cast<std::int32_t>(names_.size()));
    if (added) names_.push_back(text);
    return it->second;
  }

  void load_merges(const std::string& path) {
    const std::string data = read_maybe_gzip(path, "GPT-2 BPE merges");
    const ByteAlphabet alphabet = byte_alphabet();
    for (int b = 0; b < 256; ++b) {
      byte_symbol_[static_cast<std::size_t>(b)] =
          symbol(encode_utf8(std::u32string(1, alphabet.char_of[static_cast<std::size_t>(b)])));
    }
    // encoder.py and Hugging Face read split('\n')[1:-1]: the first line is a version header,
    // and the last element (empty after a final newline) is dropped.
    std::vector<std::string_view> lines;
    for (std::size_t pos = 0; pos <= data.size();) {
      const std::size_t end = std::min(data.find('\n', pos), data.size());
      lines.emplace_back(data.data() + pos, end - pos);
      pos = end + 1;
    }
    std::int32_t rank = 0;
    for (std::size_t i = 1; i + 1 < lines.size(); ++i, ++rank) {
      std::string_view line = lines[i];
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      const std::size_t space = line.find(' ');
      if (space == std::string_view::npos || space == 0 || space + 1 >= line.size() ||
          line.find(' ', space + 1) != std::string_view::npos) {
        MLL_THROW(DataError, path, ": line ", i + 1,
                  " of the GPT-2 BPE merges is not a merge of two symbols");
      }
      const std::string first(line.substr(0, space));
      const std::string second(line.substr(space + 1));
      const std::int32_t a = symbol(first);
      const std::int32_t b = symbol(second);
      // A pair listed twice keeps its last rank, as Python's dict(zip(merges, ranks)) does.
      merge_of_[pair_key(a, b)] = Merge{rank, symbol(first + second)};
    }
    if (merge_of_.empty()) MLL_THROW(DataError, path, ": GPT-2 BPE merges file holds no merges");
  }

  void load_ids(const std::string& path) {
    const std::string data = read_maybe_gzip(path, "GPT-2 BPE id map");
    nlohmann::json map;
    try {
      map = nlohmann::json::parse(data);
    } catch (const nlohmann::json::exception& e) {
      MLL_THROW(DataError, path, ": GPT-2 BPE id map is not JSON (", e.what(), ")");
    }
    if (!map.is_object() || map.empty()) {
      MLL_THROW(DataError, path, ": GPT-2 BPE id map must be a JSON object token -> id");
    }
    std::unordered_map<std::string, std::int64_t> id_of;
    std::int64_t largest = -1;
    for (const auto& [token, value] : map.items()) {
      if (!value.is_number_integer() || value.get<std::int64_t>() < 0) {
        MLL_THROW(DataError, path, ": GPT-2 BPE id map: the id of '", token,
                  "' is not a non-negative integer");
      }
      id_of[token] = value.get<std::int64_t>();
      largest = std::max(largest, id_of[token]);
    }
    vocab_size_ = largest + 1;
    auto find = [&](const std::string& token) -> std::optional<std::int64_t> {
      const auto it = id_of.find(token);
      if (it == id_of.end()) return std::nullopt;
      return it->second;
    };
    if (find("<s>") && find("</s>")) {  // RoBERTa (fairseq's layout)
      start_id_ = *find("<s>");
      end_id_ = *find("</s>");
      pad_id_ = find("<pad>").value_or(end_id_);
      unk_id_ = find("<unk>");
    } else if (const auto eot = find("<|endoftext|>")) {  // GPT-2
      start_id_ = end_id_ = pad_id_ = *eot;
    } else {
      MLL_THROW(DataError, path,
                ": GPT-2 BPE id map holds neither RoBERTa's <s> and </s> nor GPT-2's "
                "<|endoftext|>");
    }
    symbol_id_.assign(names_.size(), -1);
    for (std::size_t s = 0; s < names_.size(); ++s) {
      if (const auto id = find(names_[s])) symbol_id_[s] = *id;
    }
  }

  std::int64_t id_of_symbol(std::int32_t s) const {
    const std::int64_t id = symbol_id_[static_cast<std::size_t>(s)];
    if (id >= 0) return id;
    if (unk_id_) return *unk_id_;
    MLL_THROW(DataError, vocab_path_, ": GPT-2 BPE id map has no id for token '",
              names_[static_cast<std::size_t>(s)], "' (and no <unk>)");
  }

  // Merges the lowest-ranked adjacent pair everywhere (left to right, non-overlapping) until no
  // pair has a rank: encoder.py's bpe, on symbol numbers instead of strings.
  void append_bpe(const std::string& piece, std::vector<std::int64_t>& ids) const {
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      const auto hit = cache_.find(piece);
      if (hit != cache_.end()) {
        ids.insert(ids.end(), hit->second.begin(), hit->second.end());
        return;
      }
    }
    std::vector<std::int32_t> word;
    word.reserve(piece.size());
    for (const char c : piece) word.push_back(byte_symbol_[static_cast<unsigned char>(c)]);
    apply_merges(word, merge_of_);
    std::vector<std::int64_t> out;
    out.reserve(word.size());
    for (const std::int32_t s : word) out.push_back(id_of_symbol(s));
    ids.insert(ids.end(), out.begin(), out.end());
    std::lock_guard<std::mutex> lock(cache_mutex_);
    // Bounded so that a long-running service fed arbitrary text cannot grow without limit.
    if (cache_.size() >= kCacheLimit) cache_.clear();
    cache_.emplace(piece, std::move(out));
  }

  static constexpr std::size_t kCacheLimit = 1 << 18;

  std::string kind_ = "gpt2-bpe";
  bool lower_;
  std::string vocab_path_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, std::int32_t> symbol_of_;
  std::array<std::int32_t, 256> byte_symbol_{};
  MergeTable merge_of_;
  std::vector<std::int64_t> symbol_id_;
  std::int64_t vocab_size_ = 0;
  std::int64_t start_id_ = 0;
  std::int64_t end_id_ = 0;
  std::int64_t pad_id_ = 0;
  std::optional<std::int64_t> unk_id_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<std::int64_t>> cache_;
};

}  // namespace

std::vector<std::string_view> gpt2_split(std::string_view text) {
  const std::u32string t = decode_utf8(text);
  std::vector<Kind> kinds;
  kinds.reserve(t.size());
  for (const char32_t c : t) kinds.push_back(kind_of(c));
  std::vector<std::string_view> pieces;
  std::size_t byte = 0;
  for (std::size_t i = 0; i < t.size();) {
    const std::size_t len = piece_at(t, kinds, i);
    std::size_t bytes = 0;
    for (std::size_t k = i; k < i + len; ++k) {
      bytes += t[k] < 0x80 ? 1 : t[k] < 0x800 ? 2 : t[k] < 0x10000 ? 3 : 4;
    }
    pieces.push_back(text.substr(byte, bytes));
    byte += bytes;
    i += len;
  }
  return pieces;
}

std::vector<std::int64_t> gpt2_encode_raw(const Tokenizer& tokenizer, std::string_view text) {
  const auto* gpt2 = dynamic_cast<const Gpt2Bpe*>(&tokenizer);
  if (gpt2 == nullptr) MLL_THROW(UsageError, "not a gpt2-bpe tokenizer: ", tokenizer.kind());
  std::vector<std::int64_t> ids;
  gpt2->append_raw(text, ids);
  return ids;
}

std::unique_ptr<Tokenizer> make_gpt2_bpe(const TokenizerSpec& spec) {
  const std::string vocab = spec.vocab_path.empty() ? default_gpt2_vocab_path() : spec.vocab_path;
  const std::string merges =
      spec.merges_path.empty() ? default_gpt2_merges_path() : spec.merges_path;
  return std::make_unique<Gpt2Bpe>(spec, vocab, merges);
}

}  // namespace mll::tokenize::detail
