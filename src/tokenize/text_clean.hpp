// Text clean-up shared by the tokenizers: what open_clip 3.3.0 applies before tokenizing
// (ftfy.fix_text, html.unescape twice, str.strip, " ".join(str.split()), str.lower), reproduced on
// code points so that results match CPython 3.11 (Unicode 14) exactly. Internal to the module.
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

// The value of an HTML5 named reference (its name as written after '&', with or without the
// final ';'), UTF-8; nullptr when there is none of that name. Does not throw.
const char* html5_entity(std::string_view name) noexcept;

// str.isspace() and the regex module's \s (White_Space); they differ in U+001C..U+001F.
bool is_strip_space(char32_t c) noexcept;
bool is_regex_space(char32_t c) noexcept;

// The code point ranges is_regex_space accepts, in order.
std::vector<std::pair<char32_t, char32_t>> regex_space_ranges();

// str.strip() with no argument.
std::u32string_view strip(std::u32string_view text) noexcept;

// open_clip's whitespace_clean: " ".join(text.split()), runs of str.isspace() characters.
std::u32string whitespace_clean(std::u32string_view text);

// str.lower(): full lower-case mapping, including U+0130 -> "i\u0307" and the final-sigma rule.
std::u32string python_lower(std::u32string_view text);

// open_clip's whitespace_clean(basic_clean(text)), basic_clean being ftfy.fix_text, html.unescape
// twice and strip(); then lower() when asked.
// Throws DataError when `text` is not valid UTF-8.
std::string clean_text(std::string_view text, bool lower);

}  // namespace mll::tokenize::detail
