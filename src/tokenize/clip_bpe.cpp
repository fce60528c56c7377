// CLIP's byte-level BPE, as open_clip's SimpleTokenizer runs it.
#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "byte_bpe.hpp"
#include "clip_split.hpp"
#include "kinds.hpp"
#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "text_clean.hpp"

namespace mll::tokenize::detail {
namespace {

// CLIP was trained with a 49152-entry vocabulary: 256 bytes, 256 bytes ending a word, the
// merges, and two specials; the merges file holds many more merges than were used.
constexpr std::size_t kMerges = 49152 - 256 - 2;
constexpr std::int64_t kVocabSize = 512 + kMerges + 2;
const std::string kStartText(kClipStartText);
const std::string kEndText(kClipEndText);

class ClipBpe final : public Tokenizer {
 public:
  ClipBpe(const TokenizerSpec& spec, const std::string& path) : Tokenizer(spec.context_length) {
    load(path);
  }

  const std::string& kind() const noexcept override { return kind_; }
  std::int64_t vocab_size() const noexcept override { return kVocabSize; }
  std::int64_t start_id() const noexcept override { return start_id_; }
  std::int64_t end_id() const noexcept override { return end_id_; }
  std::int64_t pad_id() const noexcept override { return 0; }

  std::vector<std::int64_t> encode(std::string_view text) const override {
    const std::string clean = clean_text(text, /*lower=*/true);
    std::vector<std::int64_t> ids{start_id_};
    for (const std::string_view piece : split_.split(clean)) {
      // Only the exact text is special: a case-folded match such as "<ſtart_of_text>" goes
      // through BPE, as in open_clip, whose cache holds the specials verbatim.
      if (piece == kClipStartText) {
        ids.push_back(start_id_);
      } else if (piece == kClipEndText) {
        ids.push_back(end_id_);
      } else {
        append_bpe(std::string(piece), ids);
      }
    }
    ids.push_back(end_id_);
    return ids;
  }

 private:
  void load(const std::string& path) {
    const std::string data = read_maybe_gzip(path, "CLIP BPE vocabulary");
    const ByteAlphabet alphabet = byte_alphabet();
    // Symbols are identified by their vocabulary id; the id of a string is its last position,
    // as in the dict open_clip builds, so equal strings always share an id.
    std::vector<std::string> vocab(256);
    for (int b = 0; b < 256; ++b) {
      const auto i = static_cast<std::size_t>(alphabet.position[static_cast<std::size_t>(b)]);
      vocab[i] = encode_utf8(std::u32string(1, alphabet.char_of[static_cast<std::size_t>(b)]));
    }
    for (std::size_t i = 0; i < 256; ++i) vocab.push_back(vocab[i] + "</w>");
    std::vector<std::pair<std::string, std::string>> merges;
    merges.reserve(kMerges);
    std::size_t pos = data.find('\n');  // the first line is a version header
    std::size_t line_no = 1;
    while (merges.size() < kMerges && pos != std::string::npos && pos + 1 <= data.size()) {
      const std::size_t begin = pos + 1;
      const std::size_t end = std::min(data.find('\n', begin), data.size());
      ++line_no;
      std::string_view line(data.data() + begin, end - begin);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      const std::size_t space = line.find(' ');
      if (space == std::string_view::npos || space == 0 || space + 1 >= line.size() ||
          line.find(' ', space + 1) != std::string_view::npos) {
        MLL_THROW(DataError, path, ": line ", line_no,
                  " of the CLIP BPE vocabulary is not a merge of two symbols");
      }
      merges.emplace_back(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
      pos = end < data.size() ? end : std::string::npos;
    }
    if (merges.size() < kMerges) {
      MLL_THROW(DataError, path, ": CLIP BPE vocabulary holds ", merges.size(),
                " merges, CLIP needs ", kMerges);
    }
    for (const auto& m : merges) vocab.push_back(m.first + m.second);
    vocab.push_back(kStartText);
    vocab.push_back(kEndText);
    MLL_CHECK(static_cast<std::int64_t>(vocab.size()) == kVocabSize, "CLIP vocabulary size");

    std::unordered_map<std::string, std::int32_t> id_of;
    id_of.reserve(vocab.size());
    for (std::size_t i = 0; i < vocab.size(); ++i) id_of[vocab[i]] = static_cast<std::int32_t>(i);
    for (int b = 0; b < 256; ++b) {
      const std::size_t i =
          static_cast<std::size_t>(alphabet.position[static_cast<std::size_t>(b)]);
      byte_id_[static_cast<std::size_t>(b)] = id_of.at(vocab[i]);
      byte_end_id_[static_cast<std::size_t>(b)] = id_of.at(vocab[i + 256]);
    }
    start_id_ = id_of.at(kStartText);
    end_id_ = id_of.at(kEndText);
    merge_of_.reserve(merges.size());
    for (std::size_t rank = 0; rank < merges.size(); ++rank) {
      const auto a = id_of.find(merges[rank].first);
      const auto b = id_of.find(merges[rank].second);
      // A merge of a symbol no earlier merge produced can never fire; open_clip keeps it inert.
      if (a == id_of.end() || b == id_of.end()) continue;
      const std::int32_t merged = id_of.at(merges[rank].first + merges[rank].second);
      merge_of_.emplace(pair_key(a->second, b->second),
                        Merge{static_cast<std::int32_t>(rank), merged});
    }
  }

  // Merges the lowest-ranked adjacent pair everywhere (left to right, non-overlapping) until no
  // pair has a rank: the loop of SimpleTokenizer.bpe, on ids instead of strings.
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
    for (std::size_t i = 0; i < piece.size(); ++i) {
      const auto b = static_cast<unsigned char>(piece[i]);
      word.push_back(i + 1 == piece.size() ? byte_end_id_[b] : byte_id_[b]);
    }
    apply_merges(word, merge_of_);
    ids.insert(ids.end(), word.begin(), word.end());
    std::lock_guard<std::mutex> lock(cache_mutex_);
    // Bounded so that a long-running service fed arbitrary text cannot grow without limit.
    if (cache_.size() >= kCacheLimit) cache_.clear();
    cache_.emplace(piece, std::move(word));
  }

  static constexpr std::size_t kCacheLimit = 1 << 18;

  std::string kind_ = "clip-bpe";
  ClipSplitter split_;
  std::array<std::int32_t, 256> byte_id_{};
  std::array<std::int32_t, 256> byte_end_id_{};
  std::int64_t start_id_ = 0;
  std::int64_t end_id_ = 0;
  MergeTable merge_of_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<std::int32_t>> cache_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_clip_bpe(const TokenizerSpec& spec) {
  const std::string path = spec.vocab_path.empty() ? default_clip_vocab_path() : spec.vocab_path;
  return std::make_unique<ClipBpe>(spec, path);
}

}  // namespace mll::tokenize::detail
