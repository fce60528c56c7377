#include "text_clean.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <cstdint>
#include <iterator>

#include "ftfy_fix.hpp"
#include "mll/core/error.hpp"

namespace mll::tokenize::detail {
namespace {

struct CodeRange {
  char32_t first;
  char32_t last;
};

struct HtmlEntity {
  const char* name;
  const char* value;
};

struct CharrefRemap {
  std::uint32_t number;
  const char* value;
};

// The tables are generated from CPython itself (tools/clip_bpe_reference.py tables) because
// Python's notion of these sets, not the Unicode standard's latest one, is what open_clip runs.
#include "html_entities.inc"
#include "unicode_tables.inc"

template <std::size_t N>
bool in_ranges(const CodeRange (&table)[N], char32_t c) noexcept {
  const auto* it = std::upper_bound(std::begin(table), std::end(table), c,
                                    [](char32_t v, const CodeRange& r) { return v < r.first; });
  return it != std::begin(table) && c <= std::prev(it)->last;
}

void append_utf8(std::u32string& out, const char* utf8) {
  const std::u32string decoded = decode_utf8(utf8);
  out += decoded;
}

const HtmlEntity* find_entity(std::string_view name) noexcept {
  const auto* it =
      std::lower_bound(std::begin(kHtmlEntities), std::end(kHtmlEntities), name,
                       [](const HtmlEntity& e, std::string_view n) { return e.name < n; });
  if (it != std::end(kHtmlEntities) && it->name == name) return it;
  return nullptr;
}

bool is_ascii_digit(char32_t c) noexcept { return c >= U'0' && c <= U'9'; }

int hex_value(char32_t c) noexcept {
  if (c >= U'0' && c <= U'9') return static_cast<int>(c - U'0');
  if (c >= U'a' && c <= U'f') return static_cast<int>(c - U'a' + 10);
  if (c >= U'A' && c <= U'F') return static_cast<int>(c - U'A' + 10);
  return -1;
}

// Python's _replace_charref for a numeric reference. Numbers saturate just past U+10FFFF because
// every larger value gets the same replacement.
void append_charref(std::u32string& out, std::uint32_t number) {
  for (const auto& remap : kCharrefRemap) {
    if (remap.number == number) {
      append_utf8(out, remap.value);
      return;
    }
  }
  if ((number >= 0xD800 && number <= 0xDFFF) || number > 0x10FFFF) {
    out.push_back(U'\uFFFD');
    return;
  }
  if (in_ranges(kCharrefDropped, number)) return;
  out.push_back(static_cast<char32_t>(number));
}

bool is_name_char(char32_t c) noexcept {
  return c != U'\t' && c != U'\n' && c != U'\f' && c != U' ' && c != U'<' && c != U'&' &&
         c != U'#' && c != U';';
}

// Matches html's `&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)` at text[i] == '&'.
// Appends the replacement and returns the index after the match, or i when nothing matches.
std::size_t replace_reference(std::u32string_view text, std::size_t i, std::u32string& out) {
  const std::size_t n = text.size();
  std::size_t j = i + 1;
  if (j < n && text[j] == U'#') {
    ++j;
    std::uint32_t number = 0;
    constexpr std::uint32_t kSaturated = 0x110000;
    if (j < n && is_ascii_digit(text[j])) {
      for (; j < n && is_ascii_digit(text[j]); ++j) {
        number = std::min<std::uint32_t>(kSaturated, number * 10 + (text[j] - U'0'));
      }
    } else if (j + 1 < n && (text[j] == U'x' || text[j] == U'X') && hex_value(text[j + 1]) >= 0) {
      for (++j; j < n && hex_value(text[j]) >= 0; ++j) {
        number = std::min<std::uint32_t>(kSaturated, number * 16 + hex_value(text[j]));
      }
    } else {
      return i;
    }
    if (j < n && text[j] == U';') ++j;
    append_charref(out, number);
    return j;
  }
  const std::size_t name_start = j;
  while (j < n && j - name_start < 32 && is_name_char(text[j])) ++j;
  if (j == name_start) return i;
  if (j < n && text[j] == U';') ++j;
  const std::u32string_view name = text.substr(name_start, j - name_start);
  // Entity names are ASCII, so a name holding anything else can only match by a shorter prefix.
  const std::string utf8 = encode_utf8(name);
  if (const HtmlEntity* e = find_entity(utf8)) {
    append_utf8(out, e->value);
    return j;
  }
  for (std::size_t len = name.size() - 1; len >= 2 && len < name.size(); --len) {
    const std::u32string_view prefix = name.substr(0, len);
    if (std::any_of(prefix.begin(), prefix.end(), [](char32_t c) { return c > 0x7F; })) continue;
    if (const HtmlEntity* e = find_entity(encode_utf8(prefix))) {
      append_utf8(out, e->value);
      out.append(name.substr(len));
      return j;
    }
  }
  out.push_back(U'&');
  out.append(name);
  return j;
}

bool is_cased(char32_t c) noexcept { return in_ranges(kCased, c); }
bool is_case_ignorable(char32_t c) noexcept { return in_ranges(kCaseIgnorable, c); }

// CPython's handle_capital_sigma: Σ is final when a cased letter precedes it and none follows,
// case-ignorable characters being skipped on both sides.
bool is_final_sigma(std::u32string_view text, std::size_t i) noexcept {
  std::size_t j = i;
  while (j > 0 && is_case_ignorable(text[j - 1])) --j;
  if (j == 0 || !is_cased(text[j - 1])) return false;
  j = i + 1;
  while (j < text.size() && is_case_ignorable(text[j])) ++j;
  return j == text.size() || !is_cased(text[j]);
}

}  // namespace

std::u32string decode_utf8(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  std::size_t pos = 0;
  while (pos < text.size()) {
    utf8proc_int32_t c = 0;
    const utf8proc_ssize_t len =
        utf8proc_iterate(p + pos, static_cast<utf8proc_ssize_t>(text.size() - pos), &c);
    if (len <= 0) MLL_THROW(DataError, "text is not valid UTF-8 (at byte ", pos, ")");
    out.push_back(static_cast<char32_t>(c));
    pos += static_cast<std::size_t>(len);
  }
  return out;
}

std::string encode_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char32_t c : text) {
    utf8proc_uint8_t buf[4];
    const utf8proc_ssize_t len = utf8proc_encode_char(static_cast<utf8proc_int32_t>(c), buf);
    out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(len));
  }
  return out;
}

std::u32string html_unescape(std::u32string_view text) {
  if (text.find(U'&') == std::u32string_view::npos) return std::u32string(text);
  std::u32string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == U'&') {
      const std::size_t next = replace_reference(text, i, out);
      if (next != i) {
        i = next;
        continue;
      }
    }
    out.push_back(text[i]);
    ++i;
  }
  return out;
}

const char* html5_entity(std::string_view name) noexcept {
  const HtmlEntity* e = find_entity(name);
  return e == nullptr ? nullptr : e->value;
}

bool is_strip_space(char32_t c) noexcept { return in_ranges(kStripSpace, c); }
bool is_regex_space(char32_t c) noexcept { return in_ranges(kRegexSpace, c); }

std::vector<std::pair<char32_t, char32_t>> regex_space_ranges() {
  std::vector<std::pair<char32_t, char32_t>> out;
  for (const auto& r : kRegexSpace) out.emplace_back(r.first, r.last);
  return out;
}

std::u32string_view strip(std::u32string_view text) noexcept {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && is_strip_space(text[begin])) ++begin;
  while (end > begin && is_strip_space(text[end - 1])) --end;
  return text.substr(begin, end - begin);
}

std::u32string whitespace_clean(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (is_strip_space(text[i])) {
      out.push_back(U' ');
      while (i < text.size() && is_strip_space(text[i])) ++i;
    } else {
      out.push_back(text[i++]);
    }
  }
  return std::u32string(strip(out));
}

std::u32string python_lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c == U'\u03A3') {
      out.push_back(is_final_sigma(text, i) ? U'\u03C2' : U'\u03C3');
    } else if (c == U'\u0130') {
      // The one unconditional multi-character lower-case mapping (SpecialCasing.txt), which
      // utf8proc's simple mapping reduces to a plain 'i'.
      out += U"i\u0307";
    } else {
      out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
    }
  }
  return out;
}

std::string clean_text(std::string_view text, bool lower) {
  std::u32string s = ftfy_fix_text(decode_utf8(text));
  s = html_unescape(html_unescape(s));
  s = whitespace_clean(strip(s));
  if (lower) s = python_lower(s);
  return encode_utf8(s);
}

}  // namespace mll::tokenize::detail
