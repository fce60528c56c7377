// CLIP BPE against open_clip 3.3.0 itself (its SimpleTokenizer with ftfy 6.3.1, unpacked from
// ../shared/deps by tools/openclip_tokenizer_reference.py): several thousand strings made here
// at test time, ImageNet class names, captions and every kind of text ftfy cleans, must give the
// same ids. Skips when ../shared/deps or Debian's Python with torch and regex is missing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "mll/tokenize/tokenizer.hpp"
#include "test_paths.hpp"

namespace mll::tokenize {
namespace {

std::string python() {
  const char* p = std::getenv("MLL_PYTHON");
  return p ? p : "/usr/bin/python3";
}

std::string deps_dir() { return test::source_dir() + "/../shared/deps"; }

bool reference_available(std::string& why) {
  for (const char* name : {"open_clip-3.3.0.tar.gz", "ftfy-6.3.1.tar.gz"}) {
    if (!std::filesystem::is_regular_file(deps_dir() + "/" + name)) {
      why = deps_dir() + "/" + name + " is missing";
      return false;
    }
  }
  const std::string probe = python() + " -c 'import torch, numpy, regex' >/dev/null 2>&1";
  if (std::system(probe.c_str()) != 0) {
    why = python() + " lacks torch, numpy or regex (python3-torch, python3-numpy, python3-regex)";
    return false;
  }
  return true;
}

std::vector<std::int64_t> parse_ids(const std::string& text) {
  std::vector<std::int64_t> ids;
  std::istringstream in(text);
  std::int64_t id = 0;
  while (in >> id) ids.push_back(id);
  return ids;
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

// UTF-8 read as Windows-1252 (bytes 81, 8D, 8F, 90, 9D, undefined there, kept as C1 controls, as
// sloppy decoders do) or as Latin-1, and written out again: the usual mojibake.
std::string mojibake(const std::string& text, bool windows) {
  static const char32_t kC1[32] = {0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                   0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D,   0x017D, 0x8F,
                                   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                   0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};
  std::string out;
  for (const char ch : text) {
    const auto b = static_cast<unsigned char>(ch);
    out += utf8(windows && b >= 0x80 && b < 0xA0 ? kC1[b - 0x80] : static_cast<char32_t>(b));
  }
  return out;
}

std::string fullwidth(const std::string& ascii) {
  std::string out;
  for (const char c : ascii) {
    out += c == ' '              ? utf8(0x3000)
           : c > ' ' && c < 0x7F ? utf8(0xFF00 + (c - 0x20))
                                 : std::string(1, c);
  }
  return out;
}

std::vector<std::string> imagenet_names() {
  std::vector<std::string> names;
  for (const std::string& path :
       {test::source_dir() + "/../shared/data/imagenet/imagenet1k_synset_words.txt",
        test::source_dir() + "/data/imagenet/imagenet1k_synset_words.txt"}) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      const auto tab = line.find('\t');
      std::istringstream synonyms(line.substr(tab == std::string::npos ? 0 : tab + 1));
      std::string name;
      while (std::getline(synonyms, name, ',')) {
        const auto first = name.find_first_not_of(' ');
        if (first != std::string::npos) names.push_back(name.substr(first));
      }
    }
    if (!names.empty()) break;
  }
  return names;
}

// The strings: class names and captions, then each class of text ftfy changes, alone and mixed.
std::vector<std::string> parity_strings() {
  std::vector<std::string> s;
  const std::vector<std::string> names = imagenet_names();
  const std::vector<std::string> templates = {
      "a photo of a {}.",      "a bad photo of the {}.",
      "itap of my {}",         "a close-up photo of a {}",
      "A Photo Of The {}!",    "a sketch of a {}, drawn by hand",
      "the {} \u2014 a photo", "\u201ca photo of a {}\u201d",
      "it\u2019s a {}",        "a {}\u2019s photo",
      "\u2018{}\u2019",        "a photo of a {} &amp; its friends",
      "a photo of a {}\r\n",   "a  photo\tof a\n{}"};
  for (std::size_t i = 0; i < names.size(); ++i) {
    s.push_back(names[i]);
    if (i % 3 == 0) {
      std::string t = templates[(i / 3) % templates.size()];
      t.replace(t.find("{}"), 2, names[i]);
      s.push_back(t);
    }
  }
  const std::vector<std::string> words = {"caf\u00e9",
                                          "na\u00efve",
                                          "r\u00e9sum\u00e9",
                                          "Stra\u00dfe",
                                          "\u00e0 la mode",
                                          "S\u00e3o Paulo",
                                          "\u00fcber",
                                          "pi\u00f1ata",
                                          "\u0141\u00f3d\u017a",
                                          "\u041c\u043e\u0441\u043a\u0432\u0430",
                                          "\u03b1\u03b2\u03b3",
                                          "\u65e5\u672c",
                                          "\u2018quoted\u2019",
                                          "\u201cdouble\u201d",
                                          "it\u2019s",
                                          "em\u2014dash",
                                          "\u2026",
                                          "10\u00b0C",
                                          "\u00a3100",
                                          "\u20ac5",
                                          "\u2122",
                                          "\u00bd cup",
                                          "\U0001F600 smile",
                                          "\u2713 done",
                                          "x\u00a0y",
                                          "\u00c9cole"};
  const std::vector<std::string> curly = {"\u2018", "\u2019", "\u201a", "\u201b", "\u201c",
                                          "\u201d", "\u201e", "\u201f", "\u02bc"};
  const std::vector<std::string> ligatures = {"\ufb00", "\ufb01", "\ufb02", "\ufb03", "\ufb04",
                                              "\ufb05", "\ufb06", "\u0132", "\u0133", "\u0149",
                                              "\u01c4", "\u01c5", "\u01c6", "\u01c7", "\u01c9",
                                              "\u01ca", "\u01cb", "\u01cc", "\u01f1", "\u01f3"};
  const std::vector<std::string> controls = {
      "\x01",   "\x02",   "\x08",     "\x0b",    "\x0e",       "\x1b",   "\x1c",
      "\x1f",   "\x7f",   "\u0080",   "\u0085",  "\u0091",     "\u0092", "\u0093",
      "\u0094", "\u009d", "\u206a",   "\u206f",  "\ufff9",     "\ufffc", "\u200b",
      "\u200d", "\u00ad", "\x1b[31m", "\x1b[0m", "\x1b[1;32m", "\x1b[",  "\u0000"};
  const std::vector<std::string> breaks = {"\r\n",   "\r", "\u2028", "\u2029",
                                           "\u0085", "\n", "\n\n",   "\r\r\n"};
  const std::vector<std::string> entities = {
      "&amp;",     "&amp;amp;",    "&amp;amp;amp;", "&amp;lt;", "&lt;b&gt;", "&AMP;",
      "&EACUTE;",  "&eacute;",     "&eacute",       "&#x2019;", "&#8217;",   "&#39;",
      "&#x1F600;", "&nbsp;",       "&NTILDE;",      "&nTILDE;", "&SZLIG;",   "&hellip;",
      "&amp;#39;", "&amp;eacute;", "&quot;",        "&QUOT;",   "&#65;",     "&#65",
      "&notit;",   "&ampx",        "&copy;",        "&COPY;",   "&#128;",    "&#x80;",
      "&#xZZ;",    "&;",           "&#;",           "&bogus;",  "&Aacute;",  "&AACUTE;"};
  const std::vector<std::string> decomposed = {
      "e\u0301",       "a\u0300",      "n\u0303",      "u\u0308",       "c\u0327",      "A\u030a",
      "o\u0302\u0301", "\u1100\u1161", "\u0915\u093c", "e\u0301\u0301", "\u03b1\u0301", "i\u0307"};
  const std::vector<std::string> widths = {"\uff21\uff22\uff23",
                                           "\uff41\uff42\uff43",
                                           "\uff10\uff11\uff12",
                                           "\uff01\uff1f",
                                           "\u3000",
                                           "\uff71\uff72\uff73",
                                           "\uff76\uff9e",
                                           "\uffe0\uffe1",
                                           "\uffa1\uffa4",
                                           "\uff5e\uff5f"};
  for (const auto& w : words) {
    s.push_back(mojibake(w, true));
    s.push_back(mojibake(w, false));
    s.push_back("a photo of " + mojibake(w, true) + " in the park");
    s.push_back(mojibake(mojibake(w, true), true));  // mojibake of mojibake
    s.push_back("\ufeff" + w);
    s.push_back(w + "\ufeff" + w);
    s.push_back("<b>" + mojibake(w, true) + "</b> &amp; more");
  }
  // The cases ftfy's heuristics single out: a space for A0, lost bytes, mixed encodings.
  for (const char* raw :
       {"voil\u00c3 le travail",
        "\u00c3 la mode",
        "fa\u00c3 cil",
        "\u00c3 s vezes",
        "\u00c3 quele",
        "S\u00c3\u00a3o",
        "\u00c3\u00a9t\u00c3\u00a9",
        "\u00e2\u20ac\u0153quoted\u00e2\u20ac\ufffd",
        "\u00e2\u20ac\u0153 like this \u00e2\u20ac\ufffd",
        "caf\u00c3? au lait",
        "\u00c3\u00a9\u00c3",
        "\u00e2\u0153\u201d No problems",
        "&macr;\\_(\u00e3\u0083\u0084)_/&macr;",
        "P&EACUTE;REZ",
        "BUNDESSTRA&SZLIG;E",
        "L&OACUTE;PEZ",
        "\u00d0\u0178\u00d1\u20ac\u00d0\u00b8\u00d0\u00b2\u00d0\u00b5\u00d1\u201a",
        "\u00c2\u00a1Hola!",
        "\u00c2\u00bfQu\u00c3\u00a9?",
        "20\u00c2\u00b0C",
        "\u00c2\u00a3500",
        "\u00ce\u00b1\u00ce\u00b2",
        "\u0413\u045e\u0412\u0402\u0412\u00a6 test",
        "\u0432\u0402\u201d",
        "\u00e2\u20ac\u201d em dash",
        "It\u00e2\u20ac\u2122s",
        "\u00c3\u2014 times",
        "na\u00c3\u00afve caf\u00c3\u00a9 and caf\u00e9",
        "\u00c3\u00a0\u00c3\u00a1\u00c3\u00a2",
        "\u00e2\u20ac\u00a6",
        "\u00ef\u00bb\u00bfBOM read as Latin-1",
        "\u00c2\u00a0x",
        "x\u00c2",
        "\u00c3",
        "\u00c2 ",
        "\u00e2\u20ac",
        "\u0080\u0081\u008d\u008f\u0090\u009d",
        "\u00c3\u0192\u00c2\u00a9",
        "\u00f0\u0178\u02dc\u20ac",
        "\u00f0\u0178\u02dc",
        "\u00ed\u00a0\u00bd\u00ed\u00b8\u0080",
        "\u00c0\u0080",
        "\u00ef\u00bf\u00bd",
        "\u00e2\u20ac\u0153\u00e2\u20ac\u009d",
        "\u2018\u00c3\u00a9\u2019",
        "\u00c3\u00a9\n\u00c3\u00a9",
        "l\u00e2\u20ac\u2122h\u00c3\u00b4tel",
        "\u00c2\u00b7 bullet \u00c2\u00b7"}) {
    s.push_back(raw);
  }
  std::mt19937 rng(20240615);
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  auto name = [&] { return names.empty() ? std::string("cat") : pick(names); };
  for (int i = 0; i < 120; ++i) {
    const std::string n = name();
    s.push_back(pick(curly) + n + pick(curly) + "s");
    s.push_back(n.substr(0, n.size() / 2) + pick(ligatures) + n.substr(n.size() / 2));
    s.push_back(pick(controls) + n + pick(controls) + " " + n);
    s.push_back(n + pick(breaks) + name() + pick(breaks));
    s.push_back(pick(entities) + " " + n + " " + pick(entities) + pick(entities));
    s.push_back(n + " " + pick(decomposed) + " " + pick(decomposed));
    s.push_back(pick(widths) + fullwidth(n) + pick(widths));
    s.push_back(mojibake(n + " " + pick(words), rng() % 2 == 0));
  }
  // Mixtures of everything, some spanning lines (ftfy fixes line by line).
  std::vector<std::vector<std::string>> pools = {curly,    ligatures,  controls, breaks,
                                                 entities, decomposed, widths,   words};
  for (int i = 0; i < 300; ++i) {
    std::string t;
    const int parts = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < parts; ++k) {
      const auto r = rng() % 10;
      if (r < 8) {
        t += pick(pools[r]);
      } else if (r == 8) {
        t += mojibake(pick(words), true);
      } else {
        t += " " + name() + " ";
      }
    }
    s.push_back(t);
  }
  std::set<std::string> seen;
  std::vector<std::string> unique;
  for (auto& t : s) {
    if (seen.insert(t).second) unique.push_back(std::move(t));
  }
  return unique;
}

TEST(TokenizeOpenClipParity, IdsEqualOpenClipWithFtfy) {
  std::string why;
  if (!reference_available(why)) GTEST_SKIP() << why;
  const test::ScratchDir dir;
  const std::vector<std::string> strings = parity_strings();
  ASSERT_GE(strings.size(), 2000u);
  {
    std::ofstream out(dir / "strings.jsonl", std::ios::binary);
    for (const auto& t : strings) out << nlohmann::json(t).dump() << '\n';
  }
  const std::string command = python() + " " + test::source_dir() +
                              "/tools/openclip_tokenizer_reference.py encode --deps " + deps_dir() +
                              " < " + (dir / "strings.jsonl") + " > " + (dir / "ids.tsv") + " 2> " +
                              (dir / "stderr.txt");
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  std::ifstream in(dir / "ids.tsv");
  const auto clip = make_tokenizer(TokenizerSpec{});
  std::size_t rows = 0;
  int mismatches = 0;
  std::string line;
  while (std::getline(in, line)) {
    ASSERT_LT(rows, strings.size());
    const auto tab = line.find('\t');
    ASSERT_NE(tab, std::string::npos) << line;
    const auto want = parse_ids(line.substr(0, tab));
    const auto want_padded = parse_ids(line.substr(tab + 1));
    const std::string& text = strings[rows++];
    const auto got = clip->encode(text);
    if ((got != want || clip->encode_padded(text, 77) != want_padded) && ++mismatches <= 25) {
      ADD_FAILURE() << nlohmann::json(text).dump() << "\n  mll       " << format_ids(got)
                    << "\n  open_clip " << format_ids(want);
    }
  }
  EXPECT_EQ(rows, strings.size());
  EXPECT_EQ(mismatches, 0) << "of " << strings.size() << " strings";
  RecordProperty("strings", static_cast<int>(strings.size()));
}

}  // namespace
}  // namespace mll::tokenize
