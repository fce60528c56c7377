// Text tokenizers for the text towers of CLIP-style models.
//
// One interface over the kinds a model sidecar may name: "clip-bpe" (OpenAI CLIP's byte-level BPE,
// byte-exact with open_clip 3.3.0's SimpleTokenizer, its ftfy clean-up included, see
// docs/tokenizers.md), "gpt2-bpe" (GPT-2's byte-level BPE with GPT-2's or RoBERTa's id map, as
// open_clip's HFTokenizer runs roberta-base) and "sentencepiece" (the XLM-R / NLLB text towers,
// with HF's fairseq id layout). Token ids are
// returned as flat int64 buffers so that callers hand them to any tensor library.
//
// A Tokenizer is immutable after construction and its const functions may be called from many
// threads at once. Nothing here is collective.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mll::tokenize {

// Where SentencePiece ids land in the model's vocabulary. Hugging Face's XLM-R and NLLB
// tokenizers keep fairseq's layout: four fixed specials in front and every SentencePiece id
// shifted by one, SentencePiece's own <unk> remapped to the fairseq one.
struct SentencePieceIds {
  std::int64_t offset = 1;    // added to every SentencePiece id except <unk>
  std::int64_t unk_id = 3;    // the id SentencePiece's unknown piece becomes
  std::int64_t first_id = 0;  // put before the text: <s> (XLM-R) or a language code (NLLB)
  std::int64_t last_id = 2;   // put after the text and at the end of a truncated row: </s>
  std::int64_t pad_id = 1;    // fills a padded row

  // xlm-roberta-base/-large: <s>=0 <pad>=1 </s>=2 <unk>=3, SentencePiece id + 1. The default.
  static SentencePieceIds xlm_roberta() noexcept { return {}; }
  // facebook/nllb-200-*: as XLM-R, but the row starts with the source language code instead of
  // <s>; 256047 is eng_Latn, NllbTokenizer's default source language.
  static SentencePieceIds nllb(std::int64_t language_id = 256047) noexcept {
    SentencePieceIds ids;
    ids.first_id = language_id;
    return ids;
  }
};

struct TokenizerSpec {
  std::string kind = "clip-bpe";  // "clip-bpe" | "gpt2-bpe" | "sentencepiece"
  // clip-bpe: the merges file (gzip or plain text); empty means default_clip_vocab_path().
  // gpt2-bpe: the id map, a JSON object token -> id (GPT-2's encoder.json, RoBERTa's vocab.json;
  // gzip or plain); empty means default_gpt2_vocab_path().
  // sentencepiece: the SentencePiece model file (required).
  std::string vocab_path;
  // gpt2-bpe only: the merges (vocab.bpe / merges.txt); empty means default_gpt2_merges_path().
  std::string merges_path;
  int context_length = 77;  // the row length of encode_padded(text) and encode_batch
  // sentencepiece and gpt2-bpe: open_clip's HFTokenizer cleans text like CLIP but keeps case
  // unless the model config asks for lower case. clip-bpe always lower-cases.
  bool lower_case = false;
  SentencePieceIds sentencepiece;  // sentencepiece only
};

// The tokenizer kinds make_tokenizer accepts, in a stable order. Does not throw.
const std::vector<std::string>& known_kinds();

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // The kind it was made as ("clip-bpe", ...). Does not throw.
  virtual const std::string& kind() const noexcept = 0;

  // One past the largest id encode can return (49408 for clip-bpe). Does not throw.
  virtual std::int64_t vocab_size() const noexcept = 0;

  // The id that starts and the id that ends every row (clip-bpe: 49406 and 49407). Do not throw.
  virtual std::int64_t start_id() const noexcept = 0;
  virtual std::int64_t end_id() const noexcept = 0;

  // The id that fills padded rows (clip-bpe: 0, as open_clip). Does not throw.
  virtual std::int64_t pad_id() const noexcept = 0;

  // The spec's context length, used where none is passed. Does not throw.
  int context_length() const noexcept { return context_length_; }

  // [start] + the text's ids + [end], neither padded nor truncated. `text` is UTF-8.
  // Throws DataError when `text` is not valid UTF-8.
  virtual std::vector<std::int64_t> encode(std::string_view text) const = 0;

  // encode() cut and padded to exactly `context_length` ids by open_clip's rule: a longer row is
  // cut to context_length and its last id set to end_id(); a shorter one is filled with pad_id().
  // Throws DataError (invalid UTF-8) and UsageError (context_length < 2).
  std::vector<std::int64_t> encode_padded(std::string_view text, int context_length) const;
  std::vector<std::int64_t> encode_padded(std::string_view text) const {
    return encode_padded(text, context_length_);
  }

  // encode_padded for each text: a row-major texts.size() x context_length buffer.
  // Throws as encode_padded; the message names the index of the text at fault.
  std::vector<std::int64_t> encode_batch(const std::vector<std::string>& texts,
                                         int context_length) const;
  std::vector<std::int64_t> encode_batch(const std::vector<std::string>& texts) const {
    return encode_batch(texts, context_length_);
  }

 protected:
  explicit Tokenizer(int context_length);

 private:
  int context_length_;
};

// Makes the tokenizer `spec` describes. Throws UsageError for an unknown kind (naming it and the
// known ones) or a context length below 2; DataError naming the file when the vocabulary or
// model file is missing, unreadable or corrupt (or, for sentencepiece, when none is given).
std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerSpec& spec);

// Applies open_clip's cut-and-pad rule to a row that already holds [start] ... [end].
// Throws UsageError when context_length < 2.
std::vector<std::int64_t> fit_to_context(std::vector<std::int64_t> ids, int context_length,
                                         std::int64_t end_id, std::int64_t pad_id);

// GPT-2's id map and merges shipped with mll (data/gpt2/encoder.json.gz, vocab.bpe.gz), found
// as default_clip_vocab_path finds CLIP's. Do not throw except std::bad_alloc.
std::string default_gpt2_vocab_path();
std::string default_gpt2_merges_path();

// The CLIP merges file shipped with mll: $MLL_DATA_DIR/clip/bpe_simple_vocab_16e6.txt.gz when
// MLL_DATA_DIR is set, else the source tree's data/ when this build can still see it, else the
// installed share/mll. The path is returned even if the file is missing (make_tokenizer reports
// that). Does not throw except std::bad_alloc.
std::string default_clip_vocab_path();

// Space-separated decimal ids, the output format of `mll tokenize`. Does not throw except
// std::bad_alloc.
std::string format_ids(const std::vector<std::int64_t>& ids);

}  // namespace mll::tokenize
