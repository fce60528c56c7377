// SentencePiece models with Hugging Face's fairseq id layout (XLM-R, NLLB text towers).
#include <sentencepiece_processor.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kinds.hpp"
#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "text_clean.hpp"

namespace mll::tokenize::detail {
namespace {

class SentencePiece final : public Tokenizer {
 public:
  explicit SentencePiece(const TokenizerSpec& spec)
      : Tokenizer(spec.context_length), ids_(spec.sentencepiece), lower_(spec.lower_case) {
    if (spec.vocab_path.empty()) {
      MLL_THROW(DataError, "tokenizer kind 'sentencepiece' needs a model file (vocab path)");
    }
    fs::require_input_file(spec.vocab_path, "SentencePiece model");
    const auto status = processor_.Load(spec.vocab_path);
    if (!status.ok()) {
      MLL_THROW(DataError, spec.vocab_path, ": not a SentencePiece model (", status.ToString(),
                ")");
    }
    const std::int64_t pieces = processor_.GetPieceSize();
    vocab_size_ = std::max({pieces - 1 + ids_.offset, ids_.unk_id, ids_.first_id, ids_.last_id,
                            ids_.pad_id}) +
                  1;
    unk_ = processor_.unk_id();
  }

  const std::string& kind() const noexcept override { return kind_; }
  std::int64_t vocab_size() const noexcept override { return vocab_size_; }
  std::int64_t start_id() const noexcept override { return ids_.first_id; }
  std::int64_t end_id() const noexcept override { return ids_.last_id; }
  std::int64_t pad_id() const noexcept override { return ids_.pad_id; }

  std::vector<std::int64_t> encode(std::string_view text) const override {
    // open_clip's HFTokenizer cleans text as CLIP does before the HF tokenizer sees it.
    const std::string clean = clean_text(text, lower_);
    std::vector<int> pieces;
    const auto status = processor_.Encode(clean, &pieces);
    if (!status.ok()) MLL_THROW(InternalError, "SentencePiece failed: ", status.ToString());
    std::vector<std::int64_t> ids;
    ids.reserve(pieces.size() + 2);
    ids.push_back(ids_.first_id);
    for (const int id : pieces) ids.push_back(id == unk_ ? ids_.unk_id : id + ids_.offset);
    ids.push_back(ids_.last_id);
    return ids;
  }

 private:
  std::string kind_ = "sentencepiece";
  SentencePieceIds ids_;
  bool lower_;
  sentencepiece::SentencePieceProcessor processor_;
  std::int64_t vocab_size_ = 0;
  int unk_ = 0;
};

}  // namespace

std::unique_ptr<Tokenizer> make_sentencepiece(const TokenizerSpec& spec) {
  return std::make_unique<SentencePiece>(spec);
}

}  // namespace mll::tokenize::detail
