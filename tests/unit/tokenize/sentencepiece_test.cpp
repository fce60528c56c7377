// The sentencepiece kind on a small model trained at test time: the fairseq id layout of HF's
// XLM-R / NLLB tokenizers, open_clip's clean-up, padding with the pad id.
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "mll/core/error.hpp"
#include "mll/tokenize/tokenizer.hpp"
#include "test_paths.hpp"

namespace mll::tokenize {
namespace {

// A corpus of generated sentences over a small word list: enough for an 80-piece unigram model.
std::string train_model(const test::ScratchDir& dir) {
  const std::vector<std::string> words = {
      "a",     "photo",   "of",     "the",      "cat",       "dog",         "bird",
      "small", "large",   "red",    "blue",     "green",     "house",       "river",
      "tree",  "car",     "boat",   "plane",    "on",        "in",          "under",
      "with",  "running", "flying", "eating",   "sleeping",  "white",       "black",
      "city",  "night",   "street", "mountain", "caf\u00e9", "stra\u00dfe", "\u00fcber"};
  std::mt19937 rng(42);
  std::uniform_int_distribution<std::size_t> pick(0, words.size() - 1);
  std::uniform_int_distribution<int> length(3, 12);
  {
    std::ofstream corpus(dir / "corpus.txt");
    for (int line = 0; line < 3000; ++line) {
      const int n = length(rng);
      for (int i = 0; i < n; ++i) corpus << (i ? " " : "") << words[pick(rng)];
      corpus << "\n";
    }
  }
  const std::string prefix = dir / "tiny";
  const auto status = sentencepiece::SentencePieceTrainer::Train(
      "--input=" + (dir / "corpus.txt") + " --model_prefix=" + prefix +
      " --vocab_size=80 --model_type=unigram --character_coverage=1.0 --minloglevel=2"
      " --num_threads=1");
  EXPECT_TRUE(status.ok()) << status.ToString();
  return prefix + ".model";
}

class TokenizeSentencePiece : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = train_model(dir_);
    ASSERT_TRUE(processor_.Load(model_).ok());
    spec_.kind = "sentencepiece";
    spec_.vocab_path = model_;
    spec_.context_length = 16;
  }

  // HF's XLMRobertaTokenizer._convert_token_to_id, written out independently.
  std::vector<std::int64_t> expected(const std::string& clean, std::int64_t first) {
    std::vector<int> pieces;
    EXPECT_TRUE(processor_.Encode(clean, &pieces).ok());
    std::vector<std::int64_t> ids{first};
    for (const int id : pieces) ids.push_back(id == processor_.unk_id() ? 3 : id + 1);
    ids.push_back(2);
    return ids;
  }

  test::ScratchDir dir_;
  std::string model_;
  sentencepiece::SentencePieceProcessor processor_;
  TokenizerSpec spec_;
};

TEST_F(TokenizeSentencePiece, FairseqIdLayout) {
  const auto tok = make_tokenizer(spec_);
  EXPECT_EQ(tok->kind(), "sentencepiece");
  EXPECT_EQ(tok->start_id(), 0);
  EXPECT_EQ(tok->end_id(), 2);
  EXPECT_EQ(tok->pad_id(), 1);
  EXPECT_EQ(tok->vocab_size(), 81);
  for (const std::string text : {"a photo of the cat", "Running DOG in the city", "caf\u00e9",
                                 "stra\u00dfe \u00fcber", ""}) {
    EXPECT_EQ(tok->encode(text), expected(text, 0)) << text;
  }
  EXPECT_EQ(tok->encode(""), (std::vector<std::int64_t>{0, 2}));
}

TEST_F(TokenizeSentencePiece, UnknownPieceMapsToFairseqUnk) {
  const auto tok = make_tokenizer(spec_);
  const auto ids = tok->encode("\u4e2d");  // never in the corpus
  ASSERT_GE(ids.size(), 3u);
  EXPECT_NE(std::find(ids.begin(), ids.end(), 3), ids.end()) << format_ids(ids);
  EXPECT_EQ(ids, expected("\u4e2d", 0));
}

TEST_F(TokenizeSentencePiece, CleansTextLikeOpenClip) {
  const auto tok = make_tokenizer(spec_);
  // html.unescape twice, whitespace runs collapsed and stripped; case kept.
  EXPECT_EQ(tok->encode("  a&amp;nbsp;photo \t of\n\nthe  CAT "),
            expected("a photo of the CAT", 0));
  spec_.lower_case = true;
  const auto lower = make_tokenizer(spec_);
  EXPECT_EQ(lower->encode("A Photo OF the CAT"), expected("a photo of the cat", 0));
  EXPECT_THROW(tok->encode("\xFF"), DataError);
}

TEST_F(TokenizeSentencePiece, PaddingAndTruncation) {
  const auto tok = make_tokenizer(spec_);
  const auto short_row = tok->encode_padded("a cat");
  ASSERT_EQ(short_row.size(), 16u);
  const auto ids = tok->encode("a cat");
  EXPECT_EQ(std::vector<std::int64_t>(short_row.begin(), short_row.begin() + ids.size()), ids);
  for (std::size_t i = ids.size(); i < 16; ++i) EXPECT_EQ(short_row[i], 1);
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "mountain river ";
  const auto row = tok->encode_padded(long_text);
  const auto full = tok->encode(long_text);
  ASSERT_GT(full.size(), 16u);
  ASSERT_EQ(row.size(), 16u);
  // HF truncation keeps the first 14 pieces between <s> and </s>, as open_clip's rule does.
  EXPECT_EQ(std::vector<std::int64_t>(row.begin(), row.end() - 1),
            std::vector<std::int64_t>(full.begin(), full.begin() + 15));
  EXPECT_EQ(row.back(), 2);
}

TEST_F(TokenizeSentencePiece, NllbStartsWithLanguageCode) {
  spec_.sentencepiece = SentencePieceIds::nllb();
  const auto tok = make_tokenizer(spec_);
  EXPECT_EQ(tok->encode("a photo of the cat"), expected("a photo of the cat", 256047));
  EXPECT_EQ(tok->vocab_size(), 256048);
  const auto row = tok->encode_padded("a cat", 8);
  EXPECT_EQ(row.front(), 256047);
}

TEST_F(TokenizeSentencePiece, ExplicitMapping) {
  spec_.sentencepiece.offset = 0;
  spec_.sentencepiece.unk_id = 0;
  spec_.sentencepiece.first_id = 1;
  spec_.sentencepiece.last_id = 2;
  spec_.sentencepiece.pad_id = 0;
  const auto tok = make_tokenizer(spec_);
  std::vector<int> pieces;
  ASSERT_TRUE(processor_.Encode("a photo", &pieces).ok());
  std::vector<std::int64_t> want{1};
  want.insert(want.end(), pieces.begin(), pieces.end());
  want.push_back(2);
  EXPECT_EQ(tok->encode("a photo"), want);
  EXPECT_EQ(tok->vocab_size(), 80);
}

TEST_F(TokenizeSentencePiece, BadModelFiles) {
  auto expect_error = [&](const std::string& path, const std::string& needle) {
    spec_.vocab_path = path;
    try {
      make_tokenizer(spec_);
      FAIL() << path;
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(dir_ / "missing.model", "missing.model");
  expect_error("", "sentencepiece");
  {
    std::ofstream bad(dir_ / "bad.model");
    bad << "this is not a protobuf";
  }
  expect_error(dir_ / "bad.model", "bad.model");
  std::ofstream(dir_ / "empty.model").close();
  expect_error(dir_ / "empty.model", "empty.model");
}

TEST_F(TokenizeSentencePiece, ConcurrentEncode) {
  const auto tok = make_tokenizer(spec_);
  const std::vector<std::string> texts = {"a photo of the cat", "green river under the tree",
                                          "caf\u00e9 night", "flying plane"};
  std::vector<std::vector<std::int64_t>> want;
  for (const auto& t : texts) want.push_back(tok->encode(t));
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const std::size_t k = static_cast<std::size_t>(i + t) % texts.size();
        if (tok->encode(texts[k]) != want[k]) ++bad[static_cast<std::size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace mll::tokenize
