// CLIP BPE: byte-exact with open_clip on the published vectors and on the Python reference's
// vectors (tools/clip_bpe_reference.py), plus the contract of the Tokenizer interface.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "mll/core/error.hpp"
#include "mll/tokenize/tokenizer.hpp"
#include "test_paths.hpp"

namespace mll::tokenize {
namespace {

std::vector<std::int64_t> parse_ids(const std::string& text) {
  std::vector<std::int64_t> ids;
  std::istringstream in(text);
  std::int64_t id = 0;
  while (in >> id) ids.push_back(id);
  return ids;
}

// The same BPE, loaded once: building the merge table is the slow part of every test.
const Tokenizer& clip() {
  static const std::unique_ptr<Tokenizer> tokenizer = make_tokenizer(TokenizerSpec{});
  return *tokenizer;
}

struct Vector {
  std::string text;
  std::vector<std::int64_t> ids;
  std::vector<std::int64_t> padded;
};

std::vector<Vector> reference_vectors() {
  const std::string path = test::source_dir() + "/tests/data/tokenize/clip_bpe_vectors.tsv";
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::vector<Vector> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto tab1 = line.find('\t');
    const auto tab2 = line.find('\t', tab1 + 1);
    Vector v;
    v.text = nlohmann::json::parse(line.substr(0, tab1)).get<std::string>();
    v.ids = parse_ids(line.substr(tab1 + 1, tab2 - tab1 - 1));
    const std::string padded = line.substr(tab2 + 1);
    if (padded == "=") {
      v.padded = v.ids;
      v.padded.resize(77, 0);
    } else {
      v.padded = parse_ids(padded);
    }
    out.push_back(std::move(v));
  }
  return out;
}

// Splits one CSV record with RFC 4180 quoting.
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
      fields.back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

TEST(TokenizeClipBpe, PublishedVectors) {
  const std::string path = test::source_dir() + "/tests/data/tokenize/clip_bpe_test_vectors.csv";
  std::ifstream in(path);
  ASSERT_TRUE(in) << "missing " << path;
  std::string line;
  std::getline(in, line);  // header
  int rows = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto fields = csv_fields(line);
    ASSERT_GE(fields.size(), 2u) << line;
    // The file writes newline and tab as the two-character escapes \n and \t.
    std::string text;
    for (std::size_t i = 0; i < fields[0].size(); ++i) {
      if (fields[0][i] == '\\' && i + 1 < fields[0].size() &&
          (fields[0][i + 1] == 'n' || fields[0][i + 1] == 't')) {
        text += fields[0][i + 1] == 'n' ? '\n' : '\t';
        ++i;
      } else {
        text += fields[0][i];
      }
    }
    EXPECT_EQ(clip().encode(text), parse_ids(fields[1])) << fields[0];
    ++rows;
  }
  EXPECT_EQ(rows, 6);
}

TEST(TokenizeClipBpe, ReferenceVectors) {
  const auto vectors = reference_vectors();
  ASSERT_GT(vectors.size(), 1000u);
  int mismatches = 0;
  for (const auto& v : vectors) {
    const auto ids = clip().encode(v.text);
    const auto padded = clip().encode_padded(v.text, 77);
    if ((ids != v.ids || padded != v.padded) && ++mismatches <= 20) {
      ADD_FAILURE() << nlohmann::json(v.text).dump() << "\n  got  " << format_ids(ids)
                    << "\n  want " << format_ids(v.ids);
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << vectors.size();
}

TEST(TokenizeClipBpe, Properties) {
  EXPECT_EQ(clip().kind(), "clip-bpe");
  EXPECT_EQ(clip().vocab_size(), 49408);
  EXPECT_EQ(clip().start_id(), 49406);
  EXPECT_EQ(clip().end_id(), 49407);
  EXPECT_EQ(clip().pad_id(), 0);
  EXPECT_EQ(clip().context_length(), 77);
  EXPECT_EQ(clip().encode(""), (std::vector<std::int64_t>{49406, 49407}));
}

TEST(TokenizeClipBpe, TruncationKeepsEndId) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "cat ";
  const auto ids = clip().encode(text);
  ASSERT_EQ(ids.size(), 102u);
  const auto padded = clip().encode_padded(text, 77);
  ASSERT_EQ(padded.size(), 77u);
  EXPECT_EQ(padded.front(), 49406);
  EXPECT_EQ(padded.back(), 49407);
  EXPECT_EQ(std::vector<std::int64_t>(padded.begin(), padded.end() - 1),
            std::vector<std::int64_t>(ids.begin(), ids.begin() + 76));
  // Exactly full: nothing is cut.
  const auto full = clip().encode_padded(text, 102);
  EXPECT_EQ(full, ids);
  const auto small = clip().encode_padded("a cat", 2);
  EXPECT_EQ(small, (std::vector<std::int64_t>{49406, 49407}));
}

TEST(TokenizeClipBpe, FitToContext) {
  EXPECT_EQ(fit_to_context({1, 2, 3}, 5, 9, 0), (std::vector<std::int64_t>{1, 2, 3, 0, 0}));
  EXPECT_EQ(fit_to_context({1, 2, 3, 4, 5, 6}, 4, 9, 0), (std::vector<std::int64_t>{1, 2, 3, 9}));
  EXPECT_EQ(fit_to_context({1, 2}, 3, 9, 7), (std::vector<std::int64_t>{1, 2, 7}));
  EXPECT_THROW(fit_to_context({1, 2}, 1, 9, 0), UsageError);
}

TEST(TokenizeClipBpe, BatchIsRowMajor) {
  const std::vector<std::string> texts = {"a photo of a cat", "", "the black dog"};
  const auto flat = clip().encode_batch(texts, 8);
  ASSERT_EQ(flat.size(), 24u);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(std::vector<std::int64_t>(flat.begin() + 8 * i, flat.begin() + 8 * (i + 1)),
              clip().encode_padded(texts[i], 8));
  }
  EXPECT_EQ(clip().encode_batch({}).size(), 0u);
  EXPECT_EQ(clip().encode_batch(texts).size(), 3u * 77u);
}

TEST(TokenizeClipBpe, ErrorsNameTheirCause) {
  EXPECT_THROW(clip().encode("bad \xFF utf-8"), DataError);
  EXPECT_THROW(clip().encode_padded("a", 1), UsageError);
  try {
    clip().encode_batch({"fine", "bad \xC3"}, 77);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("text 1"), std::string::npos) << e.what();
  }
  TokenizerSpec spec;
  spec.kind = "word-piece";
  try {
    make_tokenizer(spec);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("word-piece"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("clip-bpe"), std::string::npos) << e.what();
  }
  spec = TokenizerSpec{};
  spec.context_length = 1;
  EXPECT_THROW(make_tokenizer(spec), UsageError);
}

void expect_data_error_naming(const std::string& path) {
  TokenizerSpec spec;
  spec.vocab_path = path;
  try {
    make_tokenizer(spec);
    FAIL() << path;
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

void write_file(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

std::string gzip_file(const std::string& path, const std::string& data) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, data.data(), static_cast<unsigned>(data.size()));
  gzclose(f);
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(TokenizeClipBpe, BadVocabularyFiles) {
  const test::ScratchDir dir;
  expect_data_error_naming(dir / "missing.txt.gz");
  expect_data_error_naming(dir.path());  // a directory
  write_file(dir / "empty.txt.gz", "");
  expect_data_error_naming(dir / "empty.txt.gz");
  write_file(dir / "short.txt", "#version: 0.2\na b\nc d\n");
  expect_data_error_naming(dir / "short.txt");
  write_file(dir / "malformed.txt", "#version: 0.2\nabc\n");
  expect_data_error_naming(dir / "malformed.txt");
  // A gzip stream cut in the middle.
  const std::string gz = gzip_file(dir / "whole.gz", std::string(200000, 'x'));
  write_file(dir / "truncated.txt.gz", gz.substr(0, gz.size() / 2));
  expect_data_error_naming(dir / "truncated.txt.gz");
  // Garbage after a gzip header.
  write_file(dir / "garbage.txt.gz", std::string("\x1f\x8b\x08\x00", 4) + std::string(64, 'z'));
  expect_data_error_naming(dir / "garbage.txt.gz");
}

TEST(TokenizeClipBpe, PlainTextVocabularyGivesSameIds) {
  const test::ScratchDir dir;
  gzFile f = gzopen(default_clip_vocab_path().c_str(), "rb");
  ASSERT_NE(f, nullptr);
  std::string data;
  char buf[65536];
  int n = 0;
  while ((n = gzread(f, buf, sizeof buf)) > 0) data.append(buf, static_cast<std::size_t>(n));
  gzclose(f);
  write_file(dir / "vocab.txt", data);
  TokenizerSpec spec;
  spec.vocab_path = dir / "vocab.txt";
  const auto plain = make_tokenizer(spec);
  for (const char* text : {"a photo of a cat", "Stra\u00dfe \U0001F600 &amp; 123"}) {
    EXPECT_EQ(plain->encode(text), clip().encode(text)) << text;
  }
}

TEST(TokenizeClipBpe, DataDirFromEnvironment) {
  const char* old = std::getenv("MLL_DATA_DIR");
  const std::string saved = old ? old : "";
  ::setenv("MLL_DATA_DIR", "/nonexistent/mll-data", 1);
  EXPECT_EQ(default_clip_vocab_path(), "/nonexistent/mll-data/clip/bpe_simple_vocab_16e6.txt.gz");
  try {
    make_tokenizer(TokenizerSpec{});  // the default vocabulary, now missing
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/mll-data"), std::string::npos) << e.what();
  }
  if (old) {
    ::setenv("MLL_DATA_DIR", saved.c_str(), 1);
  } else {
    ::unsetenv("MLL_DATA_DIR");
  }
  std::ifstream in(default_clip_vocab_path());
  EXPECT_TRUE(in) << default_clip_vocab_path();
}

TEST(TokenizeClipBpe, ConcurrentEncodeIsConsistent) {
  const auto vectors = reference_vectors();
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  // A fresh tokenizer, so that the threads race to fill its cache.
  const auto fresh = make_tokenizer(TokenizerSpec{});
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t i = 0; i < vectors.size(); ++i) {
        const auto& v = vectors[(i * 7 + static_cast<std::size_t>(t) * 131) % vectors.size()];
        if (fresh->encode(v.text) != v.ids) ++mismatches[static_cast<std::size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST(TokenizeClipBpe, FormatIds) {
  EXPECT_EQ(format_ids({}), "");
  EXPECT_EQ(format_ids({49406, 320, 49407}), "49406 320 49407");
  EXPECT_EQ(format_ids({-1, 0}), "-1 0");
}

}  // namespace
}  // namespace mll::tokenize
