// Pieces shared by the two byte-level BPE tokenizers (CLIP's and GPT-2's): the printable
// alphabet both give bytes, reading a vocabulary file that may be gzip-compressed, and the
// merge loop itself.
// Internal to the module.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace mll::tokenize::detail {

// The printable stand-ins GPT-2 (and CLIP after it) give bytes so that BPE never sees
// whitespace or control characters: byte b is shown as code point char_of[b], and its position
// in the base vocabulary follows the order in which bytes are listed (printable ones first).
struct ByteAlphabet {
  std::array<char32_t, 256> char_of{};
  std::array<int, 256> position{};
};

// Does not throw except std::bad_alloc.
ByteAlphabet byte_alphabet();

// The whole file, gunzipped when it is gzip (plain text passes through unchanged). `what` names
// the file's role in messages. Throws DataError naming the path when it is missing, unreadable,
// corrupt or truncated.
std::string read_maybe_gzip(const std::string& path, const std::string& what);

// A merge rule: the pair it joins has rank `rank` (lower merges first) and becomes symbol
// `merged`. Keyed by pair_key of the two symbols.
struct Merge {
  std::int32_t rank;
  std::int32_t merged;
};
using MergeTable = std::unordered_map<std::uint64_t, Merge>;

inline std::uint64_t pair_key(std::int32_t a, std::int32_t b) noexcept {
  return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) |
         static_cast<std::uint32_t>(b);
}

// Applies BPE to one word's symbols: repeatedly joins every occurrence of the adjacent pair of
// lowest rank until no pair has a rule. Does not throw except std::bad_alloc.
void apply_merges(std::vector<std::int32_t>& word, const MergeTable& merges);

}  // namespace mll::tokenize::detail
