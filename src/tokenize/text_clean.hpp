// Text clean-up shared by the tokenizers: the Python string operations open_clip applies before
// tokenizing (html.unescape, str.strip, the regex module's \s, str.lower), reproduced on code
// points so that results match CPython 3.11 (Unicode 14) exactly. Internal to the module.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mll::tokenize::detail {

// Decodes strict UTF-8 (no overlong forms, surrogates or values past U+10FFFF).
// Throws DataError naming the byte offset of the first invalid sequence.
std::u32string decode_utf8(std::string_view text);

// Never throws except std::bad_alloc (its input holds only Unicode scalar values).
std::string encode_utf8(std::u32string_view text);

// Python's html.unescape: HTML5 named references (with the legacy forms without ';' and the
// longest-prefix rule), decimal and hex references with the HTML5 remapping of C1 and invalid
// values. Does not throw except std::bad_alloc.
std::u32string html_unescape(std::u32string_view text);

// str.isspace() and the regex module's \s (White_Space); they differ in U+001C..U+001F.
bool is_strip_space(char32_t c) noexcept;
bool is_regex_space(char32_t c) noexcept;

// The code point ranges is_regex_space accepts, in order.
std::vector<std::pair<char32_t, char32_t>> regex_space_ranges();

// str.strip() with no argument.
std::u32string_view strip(std::u32string_view text) noexcept;

// re.sub(r'\s+', ' ', text).strip() with the regex module.
std::u32string whitespace_clean(std::u32string_view text);

// str.lower(): full lower-case mapping, including U+0130 -> "i\u0307" and the final-sigma rule.
std::u32string python_lower(std::u32string_view text);

// open_clip's whitespace_clean(basic_clean(text)) (without ftfy), then lower() when asked.
// Throws DataError when `text` is not valid UTF-8.
std::string clean_text(std::string_view text, bool lower);

}  // namespace mll::tokenize::detail
