// Constructors of the concrete tokenizers, for make_tokenizer. Internal to the module.
#pragma once

#include <memory>

#include "mll/tokenize/tokenizer.hpp"

namespace mll::tokenize::detail {

// Throws DataError naming the merges file when it is missing or corrupt.
std::unique_ptr<Tokenizer> make_clip_bpe(const TokenizerSpec& spec);

// Throws DataError naming the id map or merges file when one is missing or corrupt.
std::unique_ptr<Tokenizer> make_gpt2_bpe(const TokenizerSpec& spec);

// Throws DataError naming the model file when it is missing or not a SentencePiece model.
std::unique_ptr<Tokenizer> make_sentencepiece(const TokenizerSpec& spec);

}  // namespace mll::tokenize::detail
