// The Python string operations open_clip runs before BPE, checked against CPython-generated
// tables (tools/clip_bpe_reference.py tables).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "clip_split.hpp"
#include "mll/core/error.hpp"
#include "test_paths.hpp"
#include "text_clean.hpp"

namespace mll::tokenize::detail {
namespace {

std::string data_file(const std::string& name) {
  return test::source_dir() + "/tests/data/tokenize/" + name;
}

std::string unescape(const std::string& text) {
  return encode_utf8(html_unescape(decode_utf8(text)));
}

std::string lower(const std::string& text) { return encode_utf8(python_lower(decode_utf8(text))); }

bool is_surrogate(char32_t c) { return c >= 0xD800 && c <= 0xDFFF; }

TEST(TokenizeTextClean, Utf8RoundTripAndRejectsInvalid) {
  const std::string text = "a\xC3\xA9\xE4\xB8\x80\xF0\x9F\x98\x80";
  EXPECT_EQ(decode_utf8(text), U"a\u00e9\u4e00\U0001F600");
  EXPECT_EQ(encode_utf8(decode_utf8(text)), text);
  for (const std::string bad : {"\xFF", "a\xC3", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80"}) {
    EXPECT_THROW(decode_utf8(bad), DataError) << bad;
  }
  try {
    decode_utf8("ab\xFF");
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("byte 2"), std::string::npos) << e.what();
  }
}

TEST(TokenizeTextClean, HtmlUnescapeFollowsPython) {
  // Expected values from CPython 3.11's html.unescape.
  const std::map<std::string, std::string> cases = {
      {"&amp;", "&"},
      {"&amp", "&"},
      {"&ampx", "&x"},
      {"&ampfoo;", "&foo;"},
      {"&AMP;", "&"},
      {"&Amp;", "&Amp;"},
      {"&notit;", "\u00acit;"},
      {"&notin;", "\u2209"},
      {"&eacute", "\u00e9"},
      {"&unknown;", "&unknown;"},
      {"& amp;", "& amp;"},
      {"&;", "&;"},
      {"&#65;&#x41;&#X41;&#65", "AAAA"},
      {"&#0;", "\ufffd"},
      {"&#128;", "\u20ac"},
      {"&#x81;", "\xC2\x81"},
      {"&#13;", "\r"},
      {"&#1;", ""},
      {"&#xD800;", "\ufffd"},
      {"&#x110000;", "\ufffd"},
      {"&#99999999999999999999;", "\ufffd"},
      {"&#xFFFE;", ""},
      {"&#;&#x;&#xg;", "&#;&#x;&#xg;"},
      {"&amp;amp;", "&amp;"},
      {"&nGt;", "\u226b\u20d2"},
      {"&lt\u00e9", "<\u00e9"},
      {"&\u00e9lt;", "&\u00e9lt;"},
      {"&abcdefghijklmnopqrstuvwxyzabcdefghijklmnop;",
       "&abcdefghijklmnopqrstuvwxyzabcdefghijklmnop;"},
      {"no reference", "no reference"},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(unescape(in), want) << in;
}

TEST(TokenizeTextClean, WhitespaceCleanUsesPythonsTwoSpaceSets) {
  // \s (White_Space) collapses; str.strip() also removes U+001C..U+001F at the ends only.
  EXPECT_EQ(encode_utf8(whitespace_clean(decode_utf8(" a \t\n b\u3000\u00a0c  "))), "a b c");
  EXPECT_EQ(encode_utf8(whitespace_clean(decode_utf8("\x1c"
                                                     "a\x1c"
                                                     "b\x1f"))),
            "a\x1c"
            "b");
  EXPECT_EQ(clean_text("  &amp;nbsp;x&nbsp; ", true), "x");
  EXPECT_EQ(clean_text("A&#32;&#32;B", true), "a b");
  EXPECT_EQ(clean_text("", true), "");
}

TEST(TokenizeTextClean, LowerMatchesPythonOnEveryCodePoint) {
  std::ifstream in(data_file("python_lower.tsv"));
  ASSERT_TRUE(in) << data_file("python_lower.tsv");
  std::map<char32_t, std::u32string> expected;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string cp;
    fields >> cp;
    std::u32string low;
    std::string part;
    while (fields >> part) low.push_back(static_cast<char32_t>(std::stoul(part, nullptr, 16)));
    expected[static_cast<char32_t>(std::stoul(cp, nullptr, 16))] = low;
  }
  ASSERT_GT(expected.size(), 1000u);
  int mismatches = 0;
  for (char32_t c = 0; c <= 0x10FFFF; ++c) {
    if (is_surrogate(c)) continue;
    const auto it = expected.find(c);
    const std::u32string want = it == expected.end() ? std::u32string(1, c) : it->second;
    if (python_lower(std::u32string(1, c)) != want && ++mismatches <= 20) {
      ADD_FAILURE() << "lower(U+" << std::hex << static_cast<unsigned>(c) << ") differs";
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(TokenizeTextClean, FinalSigma) {
  EXPECT_EQ(lower("\u039f\u0394\u039f\u03a3"), "\u03bf\u03b4\u03bf\u03c2");
  EXPECT_EQ(lower("\u03a3"), "\u03c3");
  EXPECT_EQ(lower("A\u03a3b"), "a\u03c3b");
  EXPECT_EQ(lower("A\u03a3."), "a\u03c2.");
  EXPECT_EQ(lower("A.\u03a3"), "a.\u03c2");  // '.' is case-ignorable (MidNumLet)
  EXPECT_EQ(lower("A\u0345\u03a3"), "a\u0345\u03c2");
  EXPECT_EQ(lower("\u0130"), "i\u0307");
}

// Which alternative of the split takes a lone code point: W (whitespace), X (none), L, N, S.
char split_class(const ClipSplitter& splitter, char32_t c) {
  const std::string ch = encode_utf8(std::u32string(1, c));
  const auto alone = splitter.split(ch);
  if (alone.empty()) return is_regex_space(c) ? 'W' : 'X';
  if (alone.size() != 1 || alone[0] != ch) return '?';
  if (splitter.split("a" + ch).size() == 1) return 'L';  // letters join a letter run
  if (splitter.split("!" + ch).size() == 1) return 'S';  // symbols join a symbol run
  return 'N';
}

TEST(TokenizeTextClean, SplitMatchesPythonRegexOnEveryCodePoint) {
  std::ifstream in(data_file("split_classes.tsv"));
  ASSERT_TRUE(in) << data_file("split_classes.tsv");
  const ClipSplitter splitter;
  std::string line;
  int mismatches = 0;
  std::size_t checked = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string first, last, klass;
    fields >> first >> last >> klass;
    if (klass == "None") continue;  // surrogates
    const auto lo = static_cast<char32_t>(std::stoul(first, nullptr, 16));
    const auto hi = static_cast<char32_t>(std::stoul(last, nullptr, 16));
    for (char32_t c = lo; c <= hi; ++c) {
      ++checked;
      const char got = split_class(splitter, c);
      if (got != klass[0] && ++mismatches <= 20) {
        ADD_FAILURE() << "U+" << std::hex << static_cast<unsigned>(c) << ": RE2 " << got
                      << ", Python " << klass;
      }
    }
  }
  EXPECT_EQ(checked, 0x110000u - 0x800u);
  EXPECT_EQ(mismatches, 0);
}

TEST(TokenizeTextClean, SplitPieces) {
  const ClipSplitter splitter;
  const std::string text = "it's <start_of_text>a123 b!? caf\u00e9's \U0001F600\U0001F600";
  std::vector<std::string> pieces;
  for (const auto p : splitter.split(text)) pieces.emplace_back(p);
  const std::vector<std::string> want = {
      "it",        "'s", "<start_of_text>",     "a", "1", "2", "3", "b", "!?",
      "caf\u00e9", "'s", "\U0001F600\U0001F600"};
  EXPECT_EQ(pieces, want);
}

}  // namespace
}  // namespace mll::tokenize::detail
