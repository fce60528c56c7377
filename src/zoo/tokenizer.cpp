#include "mll/zoo/tokenizer.hpp"

#include "mll/core/error.hpp"

namespace mll::zoo {

tokenize::TokenizerSpec tokenizer_spec(const ModelSpec& spec) {
  tokenize::TokenizerSpec t;
  t.kind = spec.tokenizer.kind;
  t.vocab_path = spec.tokenizer.vocab.empty() ? std::string() : spec.vocab_path();
  t.merges_path = spec.tokenizer.merges.empty() ? std::string() : spec.merges_path();
  t.context_length = spec.tokenizer.context_length;
  return t;
}

std::unique_ptr<tokenize::Tokenizer> make_model_tokenizer(const ModelSpec& spec) {
  // SentencePiece models ship no vocabulary of their own that mll could fall back to: say which
  // file is missing rather than leave the user with a generic error.
  if (spec.tokenizer.kind == "sentencepiece" && spec.tokenizer.vocab.empty()) {
    MLL_THROW(DataError, "model '", spec.id,
              "': tokenizer: kind 'sentencepiece' needs the model's SentencePiece file (e.g. the "
              "HF tokenizer's sentencepiece.bpe.model), and the sidecar names none: set "
              "tokenizer.vocab");
  }
  try {
    return tokenize::make_tokenizer(tokenizer_spec(spec));
  } catch (const Error& e) {
    MLL_THROW(DataError, "model '", spec.id, "': tokenizer: ", e.what());
  }
}

}  // namespace mll::zoo
