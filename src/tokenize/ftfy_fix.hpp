// A port of ftfy 6.3.1's fix_text with its default configuration, the first step of open_clip's
// basic_clean. Internal to the module; docs/tokenizers.md says what is ported and what is not.
//
// Text is handled as code points (as Python str), so results can be compared with ftfy character
// for character. Nothing here throws except std::bad_alloc.
#pragma once

#include <string>
#include <string_view>

namespace mll::tokenize::detail {

// ftfy.fix_text(text): line by line, the fixers in ftfy's order, repeated until nothing changes.
std::u32string ftfy_fix_text(std::u32string_view text);

// The steps fix_text is made of, exposed so that tests can check them one at a time.

// ftfy.badness.is_bad: does the text hold a character sequence that is likely mojibake?
bool ftfy_is_bad(std::u32string_view text);

// ftfy.fix_encoding: re-decode mojibake (UTF-8 read as a single-byte code page), repeated.
std::u32string ftfy_fix_encoding(std::u32string_view text);

// ftfy.fixes.unescape_html: HTML5 entities that end in ';', their upper-case forms for Latin
// letters, and numeric references that end in ';'.
std::u32string ftfy_unescape_html(std::u32string_view text);

// unicodedata.normalize("NFC", text), by utf8proc.
std::u32string nfc(std::u32string_view text);

}  // namespace mll::tokenize::detail
