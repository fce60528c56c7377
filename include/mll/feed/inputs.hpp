// What a model's sidecar means for its inputs: the preprocessing of its images and the
// tokenizer of its captions. Shared by labeling, reuse and the debugging commands so that every
// path feeds a model exactly the same tensors. Nothing here is collective.
#pragma once

#include <memory>

#include "mll/image/preprocess.hpp"
#include "mll/tokenize/tokenizer.hpp"
#include "mll/zoo/model_spec.hpp"

namespace mll::feed {

// The image pipeline a sidecar asks for. Throws DataError for values the preprocessing cannot
// honour (unknown resize mode or interpolation), naming the model.
image::PreprocessSpec preprocess_spec(const zoo::ModelSpec& spec);

// The tokenizer a sidecar asks for (kind, vocabulary, context length). Throws DataError naming the
// model when the kind is unknown or the vocabulary cannot be read.
std::unique_ptr<tokenize::Tokenizer> make_tokenizer(const zoo::ModelSpec& spec);

// Two models can share decoded images exactly when their preprocessing is identical; this key
// says so ("224x224 shortest bicubic mean=... std=...").
std::string preprocess_key(const image::PreprocessSpec& spec);

}  // namespace mll::feed
