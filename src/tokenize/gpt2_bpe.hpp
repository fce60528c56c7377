// GPT-2's byte-level BPE (openai/gpt-2 encoder.py; Hugging Face's GPT2Tokenizer and
// RobertaTokenizer run the same algorithm). Internal to the module; make_tokenizer builds it as
// kind "gpt2-bpe". These two functions let tests check the steps below the text clean-up.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "mll/tokenize/tokenizer.hpp"

namespace mll::tokenize::detail {

// The pieces regex.findall(GPT-2's pattern, text) returns:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// as views into `text`, which must be valid UTF-8 (throws DataError otherwise).
std::vector<std::string_view> gpt2_split(std::string_view text);

// encoder.encode(text): the ids of `text` as it is (no clean-up, no start or end id).
// Throws UsageError when `tokenizer` is not a gpt2-bpe one, DataError for invalid UTF-8 or a
// token the id map lacks (when it has no <unk>).
std::vector<std::int64_t> gpt2_encode_raw(const Tokenizer& tokenizer, std::string_view text);

}  // namespace mll::tokenize::detail
