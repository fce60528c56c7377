// GPT-2 byte-level BPE against tools/gpt2_bpe_reference.py (OpenAI's published encoder.py
// algorithm, run by Python's regex module) on strings made here at test time, with GPT-2's id map
// and with a RoBERTa-style one; plus the pre-tokenizer's lookahead rule and bad files.
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gpt2_bpe.hpp"
#include "mll/core/error.hpp"
#include "mll/tokenize/tokenizer.hpp"
#include "test_paths.hpp"

namespace mll::tokenize {
namespace {

std::string python() {
  const char* p = std::getenv("MLL_PYTHON");
  return p ? p : "/usr/bin/python3";
}

bool python_has_regex() {
  static const bool ok =
      std::system((python() + " -c 'import regex' >/dev/null 2>&1").c_str()) == 0;
  return ok;
}

std::string deps_dir() { return test::source_dir() + "/../shared/deps"; }
bool have_ftfy() { return std::filesystem::is_regular_file(deps_dir() + "/ftfy-6.3.1.tar.gz"); }

const Tokenizer& gpt2() {
  static const std::unique_ptr<Tokenizer> t = [] {
    TokenizerSpec spec;
    spec.kind = "gpt2-bpe";
    return make_tokenizer(spec);
  }();
  return *t;
}

std::vector<std::int64_t> parse_ids(const std::string& text) {
  std::vector<std::int64_t> ids;
  std::istringstream in(text);
  std::int64_t id = 0;
  while (in >> id) ids.push_back(id);
  return ids;
}

// Runs the Python reference on `strings`; one id row per string.
std::vector<std::vector<std::int64_t>> reference(const test::ScratchDir& dir,
                                                 const std::vector<std::string>& strings,
                                                 const std::string& options) {
  {
    std::ofstream out(dir / "in.jsonl", std::ios::binary);
    for (const auto& s : strings) out << nlohmann::json(s).dump() << '\n';
  }
  const std::string command = python() + " " + test::source_dir() +
                              "/tools/gpt2_bpe_reference.py encode " + options + " < " +
                              (dir / "in.jsonl") + " > " + (dir / "out.txt");
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  std::vector<std::vector<std::int64_t>> rows;
  std::ifstream in(dir / "out.txt");
  std::string line;
  while (std::getline(in, line)) rows.push_back(parse_ids(line));
  EXPECT_EQ(rows.size(), strings.size());
  return rows;
}

std::vector<std::string> class_names() {
  std::vector<std::string> names;
  for (const std::string& path :
       {test::source_dir() + "/../shared/data/imagenet/imagenet1k_synset_words.txt",
        test::source_dir() + "/data/imagenet/imagenet1k_synset_words.txt"}) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      const auto tab = line.find('\t');
      if (tab != std::string::npos) names.push_back(line.substr(tab + 1));
    }
    if (!names.empty()) break;
  }
  return names;
}

std::string utf8(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

std::vector<std::string> dedup(std::vector<std::string> s) {
  std::set<std::string> seen;
  std::vector<std::string> out;
  for (auto& t : s) {
    if (seen.insert(t).second) out.push_back(std::move(t));
  }
  return out;
}

// Text for the BPE itself, uncleaned: every kind of whitespace run (the lookahead rule),
// contractions, digits, punctuation, scripts, emoji and random code points.
std::vector<std::string> raw_strings() {
  std::vector<std::string> s = {"",
                                " ",
                                "  ",
                                "a",
                                " a",
                                "a ",
                                "a  b",
                                "a   b",
                                "a\tb",
                                "a \tb",
                                "a\t b",
                                "a\n\nb",
                                "  leading",
                                "trailing  ",
                                "\n",
                                "\r\n",
                                " \n ",
                                "x\u00a0y",
                                "x\u3000 y",
                                "it's",
                                "IT'S",
                                "they're",
                                "we've",
                                "I'm",
                                "you'll",
                                "he'd",
                                "'s'",
                                "''s",
                                "rock 'n' roll",
                                "don't",
                                "o'clock",
                                "1234567890",
                                " 123 456",
                                "3.14",
                                "$5.99!",
                                "\u00bd \u00b2 \u0661\u0662",
                                "hello, world!",
                                "e-mail",
                                "C++ & C#",
                                "<|endoftext|>",
                                "<s>",
                                "caf\u00e9",
                                "Stra\u00dfe",
                                "\u4e16\u754c \u4f60\u597d",
                                "\ud55c\uad6d\uc5b4",
                                "\u0645\u0631\u062d\u0628\u0627",
                                "\u0928\u092e\u0938\u094d\u0924\u0947",
                                "\U0001F600\U0001F436",
                                "\U0001F468\u200d\U0001F469",
                                "e\u0301",
                                "\u200b",
                                "\x01\x02",
                                "Hello world",
                                " Hello  world ",
                                "\u2019s",
                                "\u00c3\u00a9"};
  std::mt19937 rng(4242);
  const std::vector<std::string> pools = {"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                                          "0123456789", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
                                          "     \t\n\r\x0b\x0c"};
  const std::vector<std::string> unicode = {
      "\u00e9",     "\u00df", "\u03a3", "\u0416", "\u4e00", "\u3042",    "\uac00",
      "\U0001F600", "\u00a0", "\u2003", "\u3000", "\u0301", "\u200d",    "\u2163",
      "\u00b2",     "\u0660", "\u2028", "\u0085", "\ufeff", "\U00010400"};
  for (int i = 0; i < 450; ++i) {
    std::string t;
    const int parts = 1 + static_cast<int>(rng() % 12);
    for (int k = 0; k < parts; ++k) {
      if (rng() % 5 == 0) {
        t += unicode[rng() % unicode.size()];
      } else {
        const std::string& pool = pools[rng() % pools.size()];
        const int n = 1 + static_cast<int>(rng() % 5);
        for (int c = 0; c < n; ++c) t += pool[rng() % pool.size()];
      }
    }
    s.push_back(t);
  }
  for (int i = 0; i < 150; ++i) {
    std::string t;
    const int n = 1 + static_cast<int>(rng() % 10);
    for (int k = 0; k < n; ++k) {
      char32_t c = 0;
      do {
        c = static_cast<char32_t>(rng() % 3 == 0 ? rng() % 0x110000 : rng() % 0x3000);
      } while (c >= 0xD800 && c <= 0xDFFF);
      t += utf8(c);
      if (rng() % 3 == 0) t += ' ';
    }
    s.push_back(t);
  }
  return dedup(s);
}

// Class names and captions as open_clip's HFTokenizer receives them, none of which ftfy changes.
std::vector<std::string> caption_strings() {
  std::vector<std::string> s;
  const std::vector<std::string> templates = {
      "a photo of a {}.",  "A bad photo of the {}", "itap of my {}!",      "a  {}\tin the  wild\n",
      "\"{}\" (a sketch)", "the {}'s photo",        "{}: 2 of them, 3.5 m"};
  const auto names = class_names();
  for (std::size_t i = 0; i < names.size(); ++i) {
    std::string t = templates[i % templates.size()];
    t.replace(t.find("{}"), 2, names[i]);
    s.push_back(i % 2 == 0 ? names[i] : t);
  }
  for (const char* t : {"caf\u00e9 cr\u00e8me", "\u65e5\u672c\u306e\u732b", "&amp; &lt;b&gt;",
                        "fish &amp; chips", "  spaced   out  "}) {
    s.push_back(t);
  }
  return dedup(s);
}

// Text that ftfy changes: checked only when ftfy 6.3.1 is at hand for the reference.
std::vector<std::string> ftfy_strings() {
  std::vector<std::string> s;
  const auto names = class_names();
  const std::vector<std::string> wraps = {"\u201c{}\u201d",
                                          "it\u2019s a {}",
                                          "\ufb01ne {}",
                                          "\uff21 {} \uff11",
                                          "caf\u00c3\u00a9 {}",
                                          "{}\r\nline two",
                                          "\ufeff{}",
                                          "{}\x01\x7f",
                                          "&amp;amp;amp; {}",
                                          "{} e\u0301",
                                          "\u00e2\u20ac\u0153{}\u00e2\u20ac\ufffd",
                                          "\u0093{}\u0094"};
  for (std::size_t i = 0; i < names.size() && s.size() < 300; i += 3) {
    std::string t = wraps[s.size() % wraps.size()];
    t.replace(t.find("{}"), 2, names[i]);
    s.push_back(t);
  }
  return dedup(s);
}

#define REQUIRE_REFERENCE() \
  if (!python_has_regex()) GTEST_SKIP() << python() << " lacks the regex module (python3-regex)"

void expect_all_equal(const std::vector<std::string>& strings,
                      const std::vector<std::vector<std::int64_t>>& want,
                      const std::function<std::vector<std::int64_t>(const std::string&)>& got) {
  ASSERT_EQ(want.size(), strings.size());
  int mismatches = 0;
  for (std::size_t i = 0; i < strings.size(); ++i) {
    const auto ids = got(strings[i]);
    if (ids != want[i] && ++mismatches <= 20) {
      ADD_FAILURE() << nlohmann::json(strings[i]).dump() << "\n  mll       " << format_ids(ids)
                    << "\n  reference " << format_ids(want[i]);
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << strings.size();
}

TEST(TokenizeGpt2Bpe, RawIdsEqualReference) {
  REQUIRE_REFERENCE();
  const test::ScratchDir dir;
  const auto strings = raw_strings();
  ASSERT_GE(strings.size(), 500u);
  expect_all_equal(strings, reference(dir, strings, "--raw"),
                   [](const std::string& t) { return detail::gpt2_encode_raw(gpt2(), t); });
}

TEST(TokenizeGpt2Bpe, CaptionIdsEqualReference) {
  REQUIRE_REFERENCE();
  const test::ScratchDir dir;
  const auto strings = caption_strings();
  ASSERT_GE(strings.size(), 500u);
  expect_all_equal(strings, reference(dir, strings, ""),
                   [](const std::string& t) { return gpt2().encode(t); });
}

TEST(TokenizeGpt2Bpe, CleanUpIncludesFtfy) {
  REQUIRE_REFERENCE();
  if (!have_ftfy()) GTEST_SKIP() << deps_dir() << "/ftfy-6.3.1.tar.gz is missing";
  const test::ScratchDir dir;
  const auto strings = ftfy_strings();
  ASSERT_GE(strings.size(), 200u);
  expect_all_equal(strings, reference(dir, strings, "--deps " + deps_dir()),
                   [](const std::string& t) { return gpt2().encode(t); });
}

std::string gunzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  EXPECT_NE(f, nullptr) << path;
  std::string data;
  char buf[65536];
  int n = 0;
  while ((n = gzread(f, buf, sizeof buf)) > 0) data.append(buf, static_cast<std::size_t>(n));
  gzclose(f);
  return data;
}

// RoBERTa keeps GPT-2's merges under fairseq's ids: <s>=0 <pad>=1 </s>=2 <unk>=3, then the
// tokens in another order. A map of that shape made from GPT-2's, with a few tokens left out so
// that <unk> is used.
std::string write_roberta_like_vocab(const test::ScratchDir& dir) {
  const auto gpt2_map = nlohmann::json::parse(gunzip(default_gpt2_vocab_path()));
  std::vector<std::string> tokens;
  for (const auto& [token, id] : gpt2_map.items()) {
    if (token != "<|endoftext|>") tokens.push_back(token);
  }
  std::mt19937 rng(99);
  std::shuffle(tokens.begin(), tokens.end(), rng);
  nlohmann::json map = {{"<s>", 0}, {"<pad>", 1}, {"</s>", 2}, {"<unk>", 3}};
  std::int64_t next = 4;
  for (const auto& t : tokens) {
    if (t == "\u0120photo" || t == "cat") continue;  // "Ġphoto": " photo"
    map[t] = next++;
  }
  map["<mask>"] = next;
  const std::string path = dir / "vocab.json";
  std::ofstream(path) << map.dump();
  return path;
}

TEST(TokenizeGpt2Bpe, RobertaIdMapFromFile) {
  REQUIRE_REFERENCE();
  const test::ScratchDir dir;
  TokenizerSpec spec;
  spec.kind = "gpt2-bpe";
  spec.vocab_path = write_roberta_like_vocab(dir);
  spec.context_length = 12;
  const auto roberta = make_tokenizer(spec);
  EXPECT_EQ(roberta->start_id(), 0);
  EXPECT_EQ(roberta->end_id(), 2);
  EXPECT_EQ(roberta->pad_id(), 1);
  EXPECT_EQ(roberta->vocab_size(),
            4 + (50256 - 2) + 1);  // specials, GPT-2's tokens less two, <mask>
  const auto padded = roberta->encode_padded("a photo of a cat");
  ASSERT_EQ(padded.size(), 12u);
  EXPECT_EQ(padded[0], 0);
  EXPECT_EQ(padded[2], 3);  // " photo" left out of the map: <unk>
  auto strings = caption_strings();
  strings.resize(300);
  expect_all_equal(strings, reference(dir, strings, "--vocab " + spec.vocab_path),
                   [&](const std::string& t) { return roberta->encode(t); });
}

TEST(TokenizeGpt2Bpe, SplitKeepsLastSpaceForTheNextWord) {
  using detail::gpt2_split;
  using V = std::vector<std::string_view>;
  EXPECT_EQ(gpt2_split("a   b"), (V{"a", "  ", " b"}));
  EXPECT_EQ(gpt2_split("a\tb"), (V{"a", "\t", "b"}));
  EXPECT_EQ(gpt2_split("a \t b"), (V{"a", " \t", " b"}));
  EXPECT_EQ(gpt2_split("end  "), (V{"end", "  "}));
  EXPECT_EQ(gpt2_split("it's 12 o'clock!!"), (V{"it", "'s", " 12", " o", "'", "clock", "!!"}));
  EXPECT_EQ(gpt2_split("IT'S"), (V{"IT", "'", "S"}));  // contractions are case-sensitive
  EXPECT_EQ(gpt2_split(""), V{});
}

TEST(TokenizeGpt2Bpe, KnownIdsAndProperties) {
  EXPECT_EQ(gpt2().kind(), "gpt2-bpe");
  EXPECT_EQ(gpt2().vocab_size(), 50257);
  EXPECT_EQ(gpt2().start_id(), 50256);
  EXPECT_EQ(gpt2().end_id(), 50256);
  // GPT-2's encoding of "Hello world", as published with the model.
  EXPECT_EQ(detail::gpt2_encode_raw(gpt2(), "Hello world"),
            (std::vector<std::int64_t>{15496, 995}));
  EXPECT_EQ(gpt2().encode("  Hello   world "),
            (std::vector<std::int64_t>{50256, 15496, 995, 50256}));
  EXPECT_THROW(detail::gpt2_encode_raw(*make_tokenizer(TokenizerSpec{}), "x"), UsageError);
}

void expect_data_error_naming(TokenizerSpec spec, const std::string& path) {
  spec.kind = "gpt2-bpe";
  try {
    make_tokenizer(spec);
    ADD_FAILURE() << "no error for " << path;
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(TokenizeGpt2Bpe, BadFilesNameThemselves) {
  const test::ScratchDir dir;
  TokenizerSpec spec;
  spec.vocab_path = dir / "missing.json";
  expect_data_error_naming(spec, spec.vocab_path);
  spec = TokenizerSpec{};
  spec.merges_path = dir / "missing.bpe";
  expect_data_error_naming(spec, spec.merges_path);
  std::ofstream(dir / "bad.json") << "{not json";
  spec = TokenizerSpec{};
  spec.vocab_path = dir / "bad.json";
  expect_data_error_naming(spec, spec.vocab_path);
  std::ofstream(dir / "nospecial.json") << R"({"a": 0, "b": 1})";
  spec.vocab_path = dir / "nospecial.json";
  expect_data_error_naming(spec, spec.vocab_path);
  std::ofstream(dir / "bad.bpe") << "#version: 0.2\nabc\n";
  spec = TokenizerSpec{};
  spec.merges_path = dir / "bad.bpe";
  expect_data_error_naming(spec, spec.merges_path);
  EXPECT_NE(std::find(known_kinds().begin(), known_kinds().end(), "gpt2-bpe"), known_kinds().end());
}

}  // namespace
}  // namespace mll::tokenize
