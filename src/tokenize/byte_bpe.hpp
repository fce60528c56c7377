// Pieces shared by the two byte-level BPE tokenizers (CLIP's and GPT-2's): the printable
// alphabet both give bytes, and reading a vocabulary file that may be gzip-compressed.
// Internal to the module.
#pragma once

#include <array>
#include <string>

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

}  // namespace mll::tokenize::detail
