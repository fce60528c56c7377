// The Python string operations open_clip runs before BPE, checked against CPython-generated
// tables (tools/clip_bpe_reference.py tables).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "clip_split.hpp"
#include "ftfy_fix.hpp"
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

TEST(TokenizeTextClean, WhitespaceCleanSplitsOnStrIsspace) {
  // open_clip 3.3.0 joins str.split(), whose separators are str.isspace(): unlike the regex
  // module's \s (White_Space), that includes U+001C..U+001F.
  EXPECT_EQ(encode_utf8(whitespace_clean(decode_utf8(" a \t\n b\u3000\u00a0c  "))), "a b c");
  EXPECT_EQ(encode_utf8(whitespace_clean(decode_utf8("\x1c"
                                                     "a\x1c"
                                                     "b\x1f"))),
            "a b");
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

std::string fix(const std::string& text) { return encode_utf8(ftfy_fix_text(decode_utf8(text))); }

// Expected values are ftfy 6.3.1's own fix_text output (the parity test checks thousands more
// against ftfy itself when ../shared/deps is present).
TEST(TokenizeFtfy, FixesWhatFtfyFixes) {
  EXPECT_EQ(fix("caf\u00c3\u00a9"), "caf\u00e9");
  EXPECT_EQ(fix("na\u00c3\u00afve caf\u00e9"), "na\u00efve caf\u00e9");  // mixed encodings
  EXPECT_EQ(fix("voil\u00c3 le travail"), "voil\u00e0 le travail");      // a lost A0
  EXPECT_EQ(fix("\u00e2\u20ac\u0153 like this \u00e2\u20ac\ufffd"), "\" like this \ufffd");
  EXPECT_EQ(fix("\u0080\u0093x\u0094"), "\u20ac\"x\"");  // C1 controls read as Windows-1252
  EXPECT_EQ(fix("it\u2019s \u201cquoted\u201d"), "it's \"quoted\"");
  EXPECT_EQ(fix("\ufb01sh \ufb02ower"), "fish flower");
  EXPECT_EQ(fix("\uff21\uff22\uff23\u3000\uff11"), "ABC 1");
  EXPECT_EQ(fix("cafe\u0301"), "caf\u00e9");
  EXPECT_EQ(fix(std::string("a\x01"
                            "b\x7f"
                            "c\ufeffd")),
            "abcd");
  EXPECT_EQ(fix("\ufeffBOM"), "BOM");
  EXPECT_EQ(fix("a\r\nb\rc\u2028d"), "a\nb\nc\nd");
  EXPECT_EQ(fix("\x1b[36;44mblue\x1b[0m"), "blue");
}

TEST(TokenizeFtfy, HtmlEntities) {
  EXPECT_EQ(fix("&amp;amp;amp;"), "&");  // unescaped until nothing changes
  EXPECT_EQ(fix("P&EACUTE;REZ"), "P\u00c9REZ");
  EXPECT_EQ(fix("&ntilde; &Ntilde; &NTILDE; &nTILDE;"), "\u00f1 \u00d1 \u00d1 &nTILDE;");
  // Text that looks like HTML keeps its entities, and so does every line after it.
  EXPECT_EQ(fix("&lt;b&gt; <i>"), "&lt;b&gt; <i>");
  EXPECT_EQ(fix("x <b>\n&amp;"), "x <b>\n&amp;");
  EXPECT_EQ(fix("&amp;\nx <b>"), "&\nx <b>");
}

TEST(TokenizeFtfy, BadnessHeuristic) {
  EXPECT_TRUE(ftfy_is_bad(decode_utf8("caf\u00c3\u00a9")));
  EXPECT_FALSE(ftfy_is_bad(decode_utf8("caf\u00e9")));
  EXPECT_FALSE(ftfy_is_bad(decode_utf8("a photo of a cat")));
  EXPECT_EQ(encode_utf8(ftfy_fix_encoding(decode_utf8("\u00c3\u00a9t\u00c3\u00a9"))),
            "\u00e9t\u00e9");
}

}  // namespace
}  // namespace mll::tokenize::detail
