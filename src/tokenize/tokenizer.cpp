#include "mll/tokenize/tokenizer.hpp"

#include <cstdlib>
#include <filesystem>

#include "kinds.hpp"
#include "mll/core/error.hpp"

namespace mll::tokenize {
namespace {

void check_context_length(int context_length) {
  if (context_length < 2) {
    MLL_THROW(UsageError,
              "context length must be at least 2 (room for the start and end ids), got ",
              context_length);
  }
}

}  // namespace

const std::vector<std::string>& known_kinds() {
  static const std::vector<std::string> kinds = {"clip-bpe", "gpt2-bpe", "sentencepiece"};
  return kinds;
}

Tokenizer::Tokenizer(int context_length) : context_length_(context_length) {
  check_context_length(context_length);
}

std::vector<std::int64_t> Tokenizer::encode_padded(std::string_view text,
                                                   int context_length) const {
  check_context_length(context_length);
  return fit_to_context(encode(text), context_length, end_id(), pad_id());
}

std::vector<std::int64_t> Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                                  int context_length) const {
  check_context_length(context_length);
  std::vector<std::int64_t> out;
  out.reserve(texts.size() * static_cast<std::size_t>(context_length));
  for (std::size_t i = 0; i < texts.size(); ++i) {
    std::vector<std::int64_t> row;
    try {
      row = encode_padded(texts[i], context_length);
    } catch (Error& e) {
      e.add_context(cat("text ", i));
      throw;
    }
    out.insert(out.end(), row.begin(), row.end());
  }
  return out;
}

std::vector<std::int64_t> fit_to_context(std::vector<std::int64_t> ids, int context_length,
                                         std::int64_t end_id, std::int64_t pad_id) {
  check_context_length(context_length);
  const auto length = static_cast<std::size_t>(context_length);
  if (ids.size() > length) {
    ids.resize(length);
    ids.back() = end_id;
  }
  ids.resize(length, pad_id);
  return ids;
}

std::unique_ptr<Tokenizer> make_tokenizer(const TokenizerSpec& spec) {
  check_context_length(spec.context_length);
  if (spec.kind == "clip-bpe") return detail::make_clip_bpe(spec);
  if (spec.kind == "gpt2-bpe") return detail::make_gpt2_bpe(spec);
  if (spec.kind == "sentencepiece") return detail::make_sentencepiece(spec);
  std::string known;
  for (const auto& k : known_kinds()) known += (known.empty() ? "" : ", ") + k;
  MLL_THROW(UsageError, "unknown tokenizer kind '", spec.kind, "' (known: ", known, ")");
}

namespace {

std::string default_data_path(const std::string& relative) {
  // An explicit MLL_DATA_DIR wins even when the file is missing there, so that a wrong setting
  // is reported instead of silently bypassed.
  if (const char* dir = std::getenv("MLL_DATA_DIR"); dir != nullptr && *dir != '\0') {
    return std::string(dir) + "/" + relative;
  }
  const std::string build = std::string(MLL_TOKENIZE_DATA_DIR_BUILD) + "/" + relative;
  std::error_code ec;
  if (std::filesystem::is_regular_file(build, ec)) return build;
  return std::string(MLL_TOKENIZE_DATA_DIR_INSTALL) + "/" + relative;
}

}  // namespace

std::string default_clip_vocab_path() {
  return default_data_path("clip/bpe_simple_vocab_16e6.txt.gz");
}
std::string default_gpt2_vocab_path() { return default_data_path("gpt2/encoder.json.gz"); }
std::string default_gpt2_merges_path() { return default_data_path("gpt2/vocab.bpe.gz"); }

std::string format_ids(const std::vector<std::int64_t>& ids) {
  std::string out;
  out.reserve(ids.size() * 6);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i != 0) out.push_back(' ');
    out += std::to_string(ids[i]);
  }
  return out;
}

}  // namespace mll::tokenize
