#include "ftfy_fix.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <bitset>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "mll/core/error.hpp"
#include "text_clean.hpp"

namespace mll::tokenize::detail {
namespace {

struct ClassRange {
  char32_t first;
  char32_t last;
  std::uint32_t mask;
};

struct CodeRange {
  char32_t first;
  char32_t last;
};

struct CodePage {
  const char* name;
  bool sloppy;
  std::uint32_t to_unicode[256];
};

struct HtmlEntity {
  const char* name;
  const char* value;
};

struct CharMapping {
  std::uint32_t code;
  const char* value;
};

// Read from ftfy and CPython by tools/make_ftfy_tables.py, so that the sets are theirs exactly.
#include "ftfy_tables.inc"

// The character classes of ftfy's heuristics, one bit each, in the order of kCharClasses.
enum Class : std::uint32_t {
  kCommon = 1u << 0,
  kC1 = 1u << 1,
  kBad = 1u << 2,
  kLaw = 1u << 3,
  kCurrency = 1u << 4,
  kStartPunct = 1u << 5,
  kEndPunct = 1u << 6,
  kNumeric = 1u << 7,
  kKaomoji = 1u << 8,
  kUpperAccented = 1u << 9,
  kLowerAccented = 1u << 10,
  kUpperCommon = 1u << 11,
  kLowerCommon = 1u << 12,
  kBox = 1u << 13,
  kFirstOf2 = 1u << 14,
  kFirstOf3 = 1u << 15,
  kFirstOf4 = 1u << 16,
  kContinuation = 1u << 17,
  kContinuationStrict = 1u << 18,
};

std::uint32_t classes_of(char32_t c) noexcept {
  const auto* it = std::upper_bound(std::begin(kCharClasses), std::end(kCharClasses), c,
                                    [](char32_t v, const ClassRange& r) { return v < r.first; });
  if (it == std::begin(kCharClasses) || c > std::prev(it)->last) return 0;
  return std::prev(it)->mask;
}

template <std::size_t N>
bool in_ranges(const CodeRange (&table)[N], char32_t c) noexcept {
  const auto* it = std::upper_bound(std::begin(table), std::end(table), c,
                                    [](char32_t v, const CodeRange& r) { return v < r.first; });
  return it != std::begin(table) && c <= std::prev(it)->last;
}

bool is_ascii_lower(char32_t c) noexcept { return c >= U'a' && c <= U'z'; }
bool is_ascii_alpha(char32_t c) noexcept { return is_ascii_lower(c) || (c >= U'A' && c <= U'Z'); }
bool is_ascii_alnum(char32_t c) noexcept { return is_ascii_alpha(c) || (c >= U'0' && c <= U'9'); }

// ---------------------------------------------------------------------------------------------
// The badness heuristic. ftfy writes it as one regex of fixed-length alternatives (plus one
// optional \s and one ^), searched anywhere; since only "is there a match" matters, each
// alternative is a sequence of character tests tried at every position.

enum class Test { kClasses, kAsciiLower, kAsciiAlpha, kNotAsciiAlpha, kSpace, kWord, kNotNewline };

struct Element {
  Test test = Test::kClasses;
  std::uint32_t mask = 0;     // kClasses: any of these classes ...
  std::u32string_view extra;  // ... or one of these characters
  bool matches(char32_t c) const noexcept {
    switch (test) {
      case Test::kClasses:
        return (classes_of(c) & mask) != 0 || extra.find(c) != std::u32string_view::npos;
      case Test::kAsciiLower:
        return is_ascii_lower(c) || extra.find(c) != std::u32string_view::npos;
      case Test::kAsciiAlpha:
        return is_ascii_alpha(c) || extra.find(c) != std::u32string_view::npos;
      case Test::kNotAsciiAlpha:
        return !is_ascii_alpha(c);
      case Test::kSpace:
        return is_strip_space(c);  // Python re's \s on str is str.isspace()
      case Test::kWord:
        return in_ranges(kPythonWord, c);
      case Test::kNotNewline:
        return c != U'\n';
    }
    return false;
  }
};

struct Pattern {
  bool at_start;  // only at position 0 (the regex's ^)
  std::vector<Element> seq;
};

Element any_of(std::uint32_t mask, std::u32string_view extra = {}) {
  return {Test::kClasses, mask, extra};
}
Element one(const char32_t* c) { return {Test::kClasses, 0, std::u32string_view(c, 1)}; }
Element chars(std::u32string_view set) { return {Test::kClasses, 0, set}; }
Element test(Test t, std::u32string_view extra = {}) { return {t, 0, extra}; }

// BADNESS_RE of ftfy/badness.py, alternative by alternative, in its order.
const std::vector<Pattern>& badness_patterns() {
  constexpr std::uint32_t kMost = kBad | kLowerAccented | kUpperAccented | kBox | kStartPunct |
                                  kEndPunct | kCurrency | kNumeric | kLaw;
  constexpr std::uint32_t kMostButBad = kMost & ~kBad;
  static const std::vector<Pattern> patterns = {
      {false, {any_of(kC1)}},
      {false, {any_of(kMost), any_of(kBad)}},
      {false, {test(Test::kAsciiAlpha), any_of(kLowerCommon | kUpperCommon), any_of(kBad)}},
      {false, {any_of(kBad), any_of(kMostButBad)}},
      {false,
       {any_of(kLowerAccented | kLowerCommon | kBox | kEndPunct | kCurrency | kNumeric),
        any_of(kUpperAccented)}},
      {false, {any_of(kBox | kEndPunct | kCurrency | kNumeric), any_of(kLowerAccented)}},
      {false, {any_of(kLowerAccented | kBox | kEndPunct), any_of(kCurrency)}},
      {false, {test(Test::kSpace), any_of(kUpperAccented), any_of(kCurrency)}},
      {false, {any_of(kUpperAccented | kBox), any_of(kNumeric | kLaw)}},
      {false,
       {any_of(kLowerAccented | kUpperAccented | kBox | kCurrency | kEndPunct), any_of(kStartPunct),
        any_of(kNumeric)}},
      {false,
       {any_of(kLowerAccented | kUpperAccented | kCurrency | kNumeric | kBox | kLaw),
        any_of(kEndPunct), any_of(kStartPunct)}},
      {false, {any_of(kCurrency | kNumeric | kBox), any_of(kStartPunct)}},
      {false, {test(Test::kAsciiLower), any_of(kUpperAccented), any_of(kStartPunct | kCurrency)}},
      {false, {any_of(kBox), any_of(kKaomoji)}},
      {false,
       {any_of(kLowerAccented | kUpperAccented | kCurrency | kNumeric | kStartPunct | kEndPunct |
               kLaw),
        any_of(kBox)}},
      {false, {any_of(kBox), any_of(kEndPunct)}},
      {false,
       {any_of(kLowerAccented | kUpperAccented), any_of(kStartPunct | kEndPunct),
        test(Test::kWord)}},
      {false, {chars(U"\u0152\u0153"), test(Test::kNotAsciiAlpha)}},
      {false, {any_of(kUpperAccented), one(U"\u00b0")}},
      {false,
       {chars(U"\u00c2\u00c3\u00ce\u00d0"),
        any_of(kStartPunct | kEndPunct,
               U"\u20ac\u0153\u0160\u0161\u00a2\u00a3\u0178\u017e\u00a0\u00ad\u00ae\u00a9\u00b0"
               U"\u00b7\u00bb\u2013\u2014\u00b4")}},
      {false, {one(U"\u00d7"), chars(U"\u00b2\u00b3")}},
      {false,
       {chars(U"\u00d8\u00d9"),
        any_of(kCommon | kCurrency | kBad | kNumeric | kStartPunct,
               U"\u0178\u0160\u00ae\u00b0\u00b5\u00bb"),
        chars(U"\u00d8\u00d9"),
        any_of(kCommon | kCurrency | kBad | kNumeric | kStartPunct,
               U"\u0178\u0160\u00ae\u00b0\u00b5\u00bb")}},
      {false, {one(U"\u00e0"), chars(U"\u00b2\u00b5\u00b9\u00bc\u00bd\u00be")}},
      {false,
       {one(U"\u221a"),
        chars(U"\u00b1\u2202\u2020\u2260\u00ae\u2122\u00b4\u2264\u2265\u00a5\u00b5\u00f8")}},
      {false, {one(U"\u2248"), chars(U"\u00b0\u00a2")}},
      {false,
       {one(U"\u201a"), one(U"\u00c4"),
        chars(U"\u00ec\u00ee\u00ef\u00f2\u00f4\u00fa\u00f9\u00fb\u2020\u00b0\u00a2\u03c0")}},
      {false, {one(U"\u201a"), chars(U"\u00e2\u00f3"), chars(U"\u00e0\u00e4\u00b0\u00ea")}},
      {false, {one(U"\u0432"), one(U"\u0402")}},
      {false,
       {chars(U"\u0412\u0413\u0420\u0421"),
        any_of(kC1 | kBad | kStartPunct | kEndPunct | kCurrency, U"\u00b0\u00b5"),
        chars(U"\u0412\u0413\u0420\u0421")}},
      {false,
       {one(U"\u0413"), one(U"\u045e"), one(U"\u0412"), one(U"\u0402"), one(U"\u0412"),
        test(Test::kNotNewline), test(Test::kAsciiAlpha, U" ")}},
      {false, {one(U"\u00c3"), chars(U"\u00a0\u00a1")}},
      // [a-z]\s?[ÃÂ][ ], as its two cases
      {false, {test(Test::kAsciiLower), chars(U"\u00c3\u00c2"), one(U" ")}},
      {false, {test(Test::kAsciiLower), test(Test::kSpace), chars(U"\u00c3\u00c2"), one(U" ")}},
      {true, {chars(U"\u00c3\u00c2"), one(U" ")}},
      {false,
       {any_of(kEndPunct, U"abcdefghijklmnopqrstuvwxyz.,?!"), one(U"\u00c2"),
        any_of(kStartPunct | kEndPunct, U" ")}},
      {false, {one(U"\u03b2"), one(U"\u20ac"), chars(U"\u2122\u00a0\u0386\u00ad\u00ae\u00b0")}},
      {false,
       {chars(U"\u0392\u0393\u039e\u039f"),
        any_of(kC1 | kBad | kStartPunct | kEndPunct | kCurrency, U"\u00b0"),
        chars(U"\u0392\u0393\u039e\u039f")}},
      {false, {one(U"\u0101"), one(U"\u20ac")}},
  };
  return patterns;
}

bool matches_at(const Pattern& p, std::u32string_view text, std::size_t i) noexcept {
  if (p.at_start && i != 0) return false;
  if (text.size() - i < p.seq.size()) return false;
  for (std::size_t k = 0; k < p.seq.size(); ++k) {
    if (!p.seq[k].matches(text[i + k])) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Single-byte code pages.

constexpr std::size_t kLatin1 = 0;
constexpr std::size_t kSloppy1252 = 1;
constexpr std::size_t kStrict1252 = std::size(kCodePages) - 1;
constexpr std::uint32_t kUndefined = 0xFFFFFFFF;

class Encoder {
 public:
  explicit Encoder(const CodePage& page) {
    for (int b = 0; b < 256; ++b) {
      const std::uint32_t c = page.to_unicode[b];
      if (c != kUndefined) byte_of_.emplace(static_cast<char32_t>(c), static_cast<char>(b));
    }
  }
  // text.encode(page) when every character has a byte (possible_encoding), else nullopt.
  std::optional<std::string> encode(std::u32string_view text) const {
    std::string out;
    out.reserve(text.size());
    for (const char32_t c : text) {
      const auto it = byte_of_.find(c);
      if (it == byte_of_.end()) return std::nullopt;
      out.push_back(it->second);
    }
    return out;
  }

 private:
  std::unordered_map<char32_t, char> byte_of_;
};

const std::vector<Encoder>& encoders() {
  static const std::vector<Encoder> all = [] {
    std::vector<Encoder> v;
    for (const auto& page : kCodePages) v.emplace_back(page);
    return v;
  }();
  return all;
}

// ---------------------------------------------------------------------------------------------
// Byte-level fixes. ftfy writes them as regexes of ordered, fixed-length alternatives over
// bytes; re.sub takes the first alternative that matches at each position.

using ByteSet = std::bitset<256>;

ByteSet bytes(std::initializer_list<std::pair<int, int>> ranges) {
  ByteSet s;
  for (const auto& [lo, hi] : ranges) {
    for (int b = lo; b <= hi; ++b) s.set(static_cast<std::size_t>(b));
  }
  return s;
}
ByteSet byte(int b) { return bytes({{b, b}}); }

using BytePattern = std::vector<ByteSet>;

std::size_t match_bytes(const BytePattern& p, std::string_view s, std::size_t i) noexcept {
  if (s.size() - i < p.size()) return 0;
  for (std::size_t k = 0; k < p.size(); ++k) {
    if (!p[k].test(static_cast<unsigned char>(s[i + k]))) return 0;
  }
  return p.size();
}

// The first of `patterns` that matches at i, or nullptr.
const BytePattern* first_match(const std::vector<BytePattern>& patterns, std::string_view s,
                               std::size_t i) noexcept {
  for (const auto& p : patterns) {
    if (match_bytes(p, s, i) != 0) return &p;
  }
  return nullptr;
}

// chardata.ALTERED_UTF8_RE: UTF-8 sequences that would be valid if a space were byte A0.
const std::vector<BytePattern>& altered_utf8() {
  static const ByteSet cont_no85_no_a0 = bytes({{0x80, 0x84}, {0x86, 0x9f}, {0xa1, 0xbf}});
  static const ByteSet cont = bytes({{0x80, 0xbf}});
  static const ByteSet space = byte(0x20);
  static const std::vector<BytePattern> p = {
      {bytes({{0xc2, 0xc3}, {0xc5, 0xc5}, {0xce, 0xce}, {0xd0, 0xd0}, {0xd9, 0xd9}}), space},
      {bytes({{0xe2, 0xe3}}), space, cont_no85_no_a0},
      {bytes({{0xe0, 0xe3}}), cont_no85_no_a0, space},
      {byte(0xf0), space, cont, cont},
      {byte(0xf0), cont, space, cont},
      {byte(0xf0), cont, cont, space},
  };
  return p;
}

bool has_altered_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (first_match(altered_utf8(), s, i) != nullptr) return true;
  }
  return false;
}

bool starts_with(std::string_view s, std::size_t i, std::string_view prefix) noexcept {
  return s.substr(i, prefix.size()) == prefix;
}

// fixes.restore_byte_a0. A lone "Ã " is first read as "à " (a word of its own: "à la mode"),
// except before the Portuguese contractions "às", "àquele", ... that ftfy lists.
std::string restore_byte_a0(std::string_view in) {
  std::string s;
  s.reserve(in.size() + 8);
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (static_cast<unsigned char>(in[i]) == 0xC3 && starts_with(in, i + 1, " ")) {
      const std::size_t j = i + 2;
      const bool keep = starts_with(in, j, " ") || starts_with(in, j, "quele") ||
                        starts_with(in, j, "quela") || starts_with(in, j, "quilo") ||
                        starts_with(in, j, "s ");
      if (!keep) {
        s += "\xC3\xA0 ";
        ++i;
        continue;
      }
    }
    s.push_back(in[i]);
  }
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    if (const BytePattern* p = first_match(altered_utf8(), s, i)) {
      for (std::size_t k = 0; k < p->size(); ++k, ++i) out.push_back(s[i] == ' ' ? '\xA0' : s[i]);
    } else {
      out.push_back(s[i++]);
    }
  }
  return out;
}

// fixes.replace_lossy_sequences: UTF-8 sequences with a byte lost to U+FFFD (which the sloppy
// code pages encode as 1A) become U+FFFD as a whole.
std::string replace_lossy_sequences(std::string_view s) {
  static const ByteSet sub = byte(0x1a);
  static const ByteSet sub_q = bytes({{0x1a, 0x1a}, {'?', '?'}});
  static const ByteSet sub_cont = bytes({{0x1a, 0x1a}, {0x80, 0xbf}});
  static const ByteSet sub_q_cont = bytes({{0x1a, 0x1a}, {'?', '?'}, {0x80, 0xbf}});
  static const ByteSet lead3 = bytes({{0xe0, 0xef}});
  static const ByteSet lead4 = bytes({{0xf0, 0xf4}});
  static const ByteSet ed = byte(0xed);
  static const ByteSet high = bytes({{0xa0, 0xaf}});
  static const ByteSet low = bytes({{0xb0, 0xbf}});
  static const std::vector<BytePattern> p = {
      {bytes({{0xc2, 0xdf}}), sub},
      {bytes({{0xc2, 0xc3}}), byte('?')},
      {ed, high, sub_q, ed, low, sub_q_cont},
      {ed, high, sub_q_cont, ed, low, sub_q},
      {lead3, sub_q, sub_cont},
      {lead3, sub_cont, sub_q},
      {lead4, sub_q, sub_cont, sub_cont},
      {lead4, sub_cont, sub_q, sub_cont},
      {lead4, sub_cont, sub_cont, sub_q},
      {sub},
  };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    if (const BytePattern* m = first_match(p, s, i)) {
      out += "\xEF\xBF\xBD";
      i += m->size();
    } else {
      out.push_back(s[i++]);
    }
  }
  return out;
}

// Python's strict UTF-8 decoder, without exceptions.
std::optional<std::u32string> try_decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  std::size_t pos = 0;
  while (pos < s.size()) {
    utf8proc_int32_t c = 0;
    const utf8proc_ssize_t len =
        utf8proc_iterate(p + pos, static_cast<utf8proc_ssize_t>(s.size() - pos), &c);
    if (len <= 0) return std::nullopt;
    out.push_back(static_cast<char32_t>(c));
    pos += static_cast<std::size_t>(len);
  }
  return out;
}

// ftfy's "utf-8-variants" codec: UTF-8 plus CESU-8 surrogate pairs and Java's C0 80 for U+0000.
// It finds its special sequences with a bytes regex whose `$` also matches before a final
// newline; that quirk is kept (it decides two corner cases: "C0 0A" and a pair ending in 0A
// at the very end).
class Utf8Variants {
 public:
  explicit Utf8Variants(std::string_view s) : s_(s), n_(s.size()) {}

  std::optional<std::u32string> decode() const {
    std::u32string out;
    std::size_t pos = 0;
    while (pos < n_) {
      const std::size_t special = find_special(pos);
      if (special > pos) {
        const auto plain = try_decode_utf8(s_.substr(pos, special - pos));
        if (!plain) return std::nullopt;
        out += *plain;
        pos = special;
        continue;
      }
      if (at(pos) == 0xC0) {
        if (n_ - pos < 2) return std::nullopt;
        out.push_back(U'\0');
        pos += 2;
        continue;
      }
      // An ED sequence: a well-formed CESU-8 pair or nothing (a lone surrogate is an error).
      if (n_ - pos < 6 || !cesu_pair_at(pos)) return std::nullopt;
      out.push_back(
          static_cast<char32_t>(((at(pos + 1) & 0x0F) << 16) + ((at(pos + 2) & 0x3F) << 10) +
                                ((at(pos + 4) & 0x0F) << 6) + (at(pos + 5) & 0x3F) + 0x10000));
      pos += 6;
    }
    return out;
  }

 private:
  unsigned at(std::size_t i) const noexcept { return static_cast<unsigned char>(s_[i]); }
  bool in(std::size_t i, unsigned lo, unsigned hi) const noexcept {
    return i < n_ && at(i) >= lo && at(i) <= hi;
  }
  // Python's `$` without MULTILINE: the end, or just before a newline that ends the input.
  bool end_at(std::size_t i) const noexcept { return i == n_ || (i + 1 == n_ && at(i) == 0x0A); }

  // SPECIAL_BYTES_RE.search: the first C0 (80|$) or ED ([A0-BF]|$) ([80-BF]|$) at or after
  // `from`, or n_ when none.
  std::size_t find_special(std::size_t from) const noexcept {
    for (std::size_t i = from; i < n_; ++i) {
      if (at(i) == 0xC0 && (in(i + 1, 0x80, 0x80) || end_at(i + 1))) return i;
      if (at(i) == 0xED) {
        std::size_t q = i + 1;
        if (in(q, 0xA0, 0xBF)) {
          ++q;
        } else if (!end_at(q)) {
          continue;
        }
        if (in(q, 0x80, 0xBF) || end_at(q)) return i;
      }
    }
    return n_;
  }

  // CESU8_RE.match at i, given at least six bytes from i.
  bool cesu_pair_at(std::size_t i) const noexcept {
    return at(i) == 0xED && in(i + 1, 0xA0, 0xAF) && in(i + 2, 0x80, 0xBF) && at(i + 3) == 0xED &&
           in(i + 4, 0xB0, 0xBF) && (in(i + 5, 0x80, 0xBF) || end_at(i + 5));
  }

  std::string_view s_;
  std::size_t n_;
};

// ---------------------------------------------------------------------------------------------
// Character-level fixers.

bool is_c1(char32_t c) noexcept { return c >= 0x80 && c <= 0x9F; }

// fixes.fix_c1_controls: C1 controls read as Windows-1252, as browsers do.
std::u32string fix_c1_controls(std::u32string_view text) {
  std::u32string out(text);
  for (char32_t& c : out) {
    if (is_c1(c)) c = static_cast<char32_t>(kCodePages[kSloppy1252].to_unicode[c]);
  }
  return out;
}

// UTF8_DETECTOR_RE at i: after a character that is not a strict continuation, one or more
// UTF-8-looking sequences (a lead character and its continuations). Returns the length, 0 when
// none. The alternatives are tried in order and the repetition is greedy, as Python does.
std::size_t utf8_run_at(std::u32string_view t, std::size_t i) noexcept {
  if (i > 0 && (classes_of(t[i - 1]) & kContinuationStrict) != 0) return 0;
  auto continues = [&](std::size_t from, std::size_t count) {
    if (t.size() - from < count) return false;
    for (std::size_t k = 0; k < count; ++k) {
      if ((classes_of(t[from + k]) & kContinuation) == 0) return false;
    }
    return true;
  };
  std::size_t p = i;
  while (p < t.size()) {
    const std::uint32_t lead = classes_of(t[p]);
    if ((lead & kFirstOf2) != 0 && continues(p + 1, 1)) {
      p += 2;
    } else if ((lead & kFirstOf3) != 0 && continues(p + 1, 2)) {
      p += 3;
    } else if ((lead & kFirstOf4) != 0 && continues(p + 1, 3)) {
      p += 4;
    } else {
      break;
    }
  }
  return p - i;
}

// fixes.decode_inconsistent_utf8: mojibake embedded in otherwise fine text, fixed piece by piece.
std::u32string decode_inconsistent_utf8(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t len = utf8_run_at(text, i);
    if (len == 0) {
      out.push_back(text[i++]);
      continue;
    }
    const std::u32string_view piece = text.substr(i, len);
    // Only a strictly shorter piece, so that the recursion ends.
    if (len < text.size() && ftfy_is_bad(piece)) {
      out += ftfy_fix_encoding(piece);
    } else {
      out += piece;
    }
    i += len;
  }
  return out;
}

bool all_ascii(std::u32string_view text) noexcept {
  return std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x80; });
}

// ftfy._fix_encoding_one_step_and_explain.
std::u32string fix_encoding_step(std::u32string_view text) {
  if (text.empty() || all_ascii(text) || !ftfy_is_bad(text)) return std::u32string(text);
  bool latin1_possible = false;
  for (std::size_t page = 0; page < kStrict1252; ++page) {
    std::optional<std::string> encoded = encoders()[page].encode(text);
    if (!encoded) continue;
    if (page == kLatin1) latin1_possible = true;
    std::string bytes = std::move(*encoded);
    // Not for MacRoman, where "– " (an en dash and a space) would look like it.
    if (std::string_view(kCodePages[page].name) != "macroman" && has_altered_utf8(bytes)) {
      bytes = restore_byte_a0(bytes);
    }
    if (kCodePages[page].sloppy) bytes = replace_lossy_sequences(bytes);
    const bool variants =
        bytes.find('\xED') != std::string::npos || bytes.find('\xC0') != std::string::npos;
    std::optional<std::u32string> fixed =
        variants ? Utf8Variants(bytes).decode() : try_decode_utf8(bytes);
    if (fixed) return std::move(*fixed);
  }
  bool has_run = false;
  for (std::size_t i = 0; i < text.size() && !has_run; ++i) has_run = utf8_run_at(text, i) != 0;
  if (has_run) {
    std::u32string fixed = decode_inconsistent_utf8(text);
    if (fixed != text) return fixed;
  }
  // ftfy means to keep text that is both Latin-1 and Windows-1252, but it tests for the name
  // "windows-1252", which its list of tried encodings never holds (that one is "sloppy-..."),
  // so Latin-1 text always reaches the strict Windows-1252 re-reading below.
  if (latin1_possible) {
    std::u32string fixed;
    fixed.reserve(text.size());
    bool ok = true;
    for (const char32_t c : text) {
      const std::uint32_t v = kCodePages[kStrict1252].to_unicode[c];
      if (v == kUndefined) {
        ok = false;
        break;
      }
      fixed.push_back(static_cast<char32_t>(v));
    }
    if (ok && fixed != text) return fixed;
  }
  if (std::any_of(text.begin(), text.end(), is_c1)) return fix_c1_controls(text);
  return std::u32string(text);
}

template <std::size_t N>
const CharMapping* find_mapping(const CharMapping (&table)[N], char32_t c) noexcept {
  const auto* it = std::lower_bound(std::begin(table), std::end(table), c,
                                    [](const CharMapping& m, char32_t v) { return m.code < v; });
  return it != std::end(table) && it->code == c ? it : nullptr;
}

// str.translate with one of ftfy's maps.
template <std::size_t N>
std::u32string translate(std::u32string_view text, const CharMapping (&table)[N]) {
  std::u32string out;
  out.reserve(text.size());
  for (const char32_t c : text) {
    if (const CharMapping* m = find_mapping(table, c)) {
      out += decode_utf8(m->value);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::u32string uncurl_quotes(std::u32string_view text) {
  std::u32string out(text);
  for (char32_t& c : out) {
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) {
      c = U'\'';
    } else if (c >= 0x201C && c <= 0x201F) {
      c = U'"';
    }
  }
  return out;
}

std::u32string fix_line_breaks(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char32_t c = text[i];
    if (c == U'\r' && i + 1 < text.size() && text[i + 1] == U'\n') {
      out.push_back(U'\n');
      ++i;
    } else if (c == U'\r' || c == 0x2028 || c == 0x2029 || c == 0x85) {
      out.push_back(U'\n');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// fixes.remove_terminal_escapes: ESC [ (digits or ';')* letter. Python's \d is any decimal
// digit, not only ASCII.
std::u32string remove_terminal_escapes(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == 0x1B && i + 1 < text.size() && text[i + 1] == U'[') {
      std::size_t k = i + 2;
      while (k < text.size() && (text[k] == U';' || in_ranges(kPythonDigit, text[k]))) ++k;
      if (k < text.size() && is_ascii_alpha(text[k])) {
        i = k;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

// fixes.remove_control_chars: C0 controls but the whitespace ones, DEL, the deprecated Arabic
// format characters, the BOM and the interlinear annotation characters.
bool is_removed_control(char32_t c) noexcept {
  return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
         (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

std::u32string remove_control_chars(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (const char32_t c : text) {
    if (!is_removed_control(c)) out.push_back(c);
  }
  return out;
}

// fix_and_explain on one segment, with the default fixers in ftfy's order until a fixed point.
std::u32string fix_segment(std::u32string text, bool unescape_html) {
  while (true) {
    const std::u32string before = text;
    if (unescape_html) text = ftfy_unescape_html(text);
    text = ftfy_fix_encoding(text);
    text = fix_c1_controls(text);
    text = translate(text, kLigatures);
    text = translate(text, kWidthMap);
    text = uncurl_quotes(text);
    text = fix_line_breaks(text);
    // fix_surrogates has nothing to do: decoded UTF-8 never holds surrogates.
    text = remove_terminal_escapes(text);
    text = remove_control_chars(text);
    text = nfc(text);
    if (text == before) return text;
  }
}

}  // namespace

bool ftfy_is_bad(std::u32string_view text) {
  const auto& patterns = badness_patterns();
  for (std::size_t i = 0; i < text.size(); ++i) {
    for (const auto& p : patterns) {
      if (matches_at(p, text, i)) return true;
    }
  }
  return false;
}

std::u32string ftfy_fix_encoding(std::u32string_view text) {
  std::u32string current(text);
  while (true) {
    std::u32string next = fix_encoding_step(current);
    if (next == current) return next;
    current = std::move(next);
  }
}

std::u32string ftfy_unescape_html(std::u32string_view text) {
  if (text.find(U'&') == std::u32string_view::npos) return std::u32string(text);
  std::u32string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    // HTML_ENTITY_RE: &#?[0-9A-Za-z]{1,24};
    if (text[i] == U'&') {
      const std::size_t j = i + 1 < text.size() && text[i + 1] == U'#' ? i + 2 : i + 1;
      std::size_t k = j;
      while (k < text.size() && is_ascii_alnum(text[k])) ++k;
      if (k > j && k - j <= 24 && k < text.size() && text[k] == U';') {
        const std::u32string_view match = text.substr(i, k + 1 - i);
        const std::string name = encode_utf8(match.substr(1));
        if (const char* value = html5_entity(name)) {
          out += decode_utf8(value);
        } else if (const auto* upper = std::lower_bound(
                       std::begin(kUpperEntities), std::end(kUpperEntities), name,
                       [](const HtmlEntity& e, const std::string& n) { return e.name < n; });
                   upper != std::end(kUpperEntities) && upper->name == name) {
          out += decode_utf8(upper->value);
        } else if (j == i + 2) {
          // A numeric reference counts only when html.unescape takes all of it.
          const std::u32string unescaped = html_unescape(match);
          if (unescaped.find(U';') != std::u32string::npos) {
            out += match;
          } else {
            out += unescaped;
          }
        } else {
          out += match;
        }
        i = k + 1;
        continue;
      }
    }
    out.push_back(text[i++]);
  }
  return out;
}

std::u32string nfc(std::u32string_view text) {
  if (all_ascii(text)) return std::u32string(text);
  const std::string utf8 = encode_utf8(text);
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t len =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(utf8.data()),
                   static_cast<utf8proc_ssize_t>(utf8.size()), &mapped,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(mapped, &std::free);
  if (len < 0) throw std::bad_alloc();  // the input is valid UTF-8, so only memory can fail
  return decode_utf8(
      std::string_view(reinterpret_cast<const char*>(mapped), static_cast<std::size_t>(len)));
}

std::u32string ftfy_fix_text(std::u32string_view text) {
  constexpr std::size_t kMaxSegment = 1000000;  // max_decode_length
  std::u32string out;
  out.reserve(text.size());
  // "auto": unescape unless the text looks like HTML; once a line holds '<', ftfy stops
  // unescaping for the rest of the text.
  bool unescape_html = true;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t end = text.find(U'\n', pos);
    end = end == std::u32string_view::npos ? text.size() : end + 1;
    end = std::min(end, pos + kMaxSegment);
    const std::u32string_view segment = text.substr(pos, end - pos);
    if (segment.find(U'<') != std::u32string_view::npos) unescape_html = false;
    out += fix_segment(std::u32string(segment), unescape_html);
    pos = end;
  }
  return out;
}

}  // namespace mll::tokenize::detail
