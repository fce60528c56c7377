// The tokenizer a model's sidecar asks for, built in one place so that `mll zoo check` and
// `mll label` fail alike on a sidecar whose tokenizer cannot be made. Not collective.
#pragma once

#include <memory>

#include "mll/tokenize/tokenizer.hpp"
#include "mll/zoo/model_spec.hpp"

namespace mll::zoo {

// The tokenize::TokenizerSpec of `spec`: kind, context length and the vocabulary / merges paths
// resolved against the sidecar's directory (empty where the sidecar names none). Does not throw
// except std::bad_alloc.
tokenize::TokenizerSpec tokenizer_spec(const ModelSpec& spec);

// make_tokenizer(tokenizer_spec(spec)). Throws DataError, one line starting "model '<id>':
// tokenizer:", when the kind is unknown, a file is missing or corrupt, or a sentencepiece
// sidecar names no model file.
std::unique_ptr<tokenize::Tokenizer> make_model_tokenizer(const ModelSpec& spec);

}  // namespace mll::zoo
