// SentencePiece models with Hugging Face's fairseq id layout (XLM-R, NLLB text towers).
//
// libsentencepiece is reached through a small shim loaded with RTLD_DEEPBIND (see
// sentencepiece_shim.cpp for why it cannot be linked into a process that also holds libtorch).
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "kinds.hpp"
#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "text_clean.hpp"

namespace mll::tokenize::detail {
namespace {

// The shim's entry points, resolved once per process.
struct Shim {
  void* (*load)(const char*, char*, int) = nullptr;
  void (*free)(void*) = nullptr;
  int (*piece_size)(void*) = nullptr;
  int (*unk_id)(void*) = nullptr;
  int (*encode)(void*, const char*, int*, int, char*, int) = nullptr;
};

const Shim& shim() {
  static Shim s;
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    const char* override_path = std::getenv("MLL_SENTENCEPIECE_SHIM");
    std::vector<std::string> candidates;
    if (override_path != nullptr && *override_path != '\0') candidates.push_back(override_path);
    candidates.push_back(MLL_SP_SHIM_BUILD_PATH);
    candidates.push_back(MLL_SP_SHIM_INSTALL_PATH);
    void* library = nullptr;
    for (const auto& path : candidates) {
      library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (library != nullptr) break;
      error += (error.empty() ? "" : "; ") + std::string(dlerror());
    }
    if (library == nullptr) return;
    s.load = reinterpret_cast<decltype(s.load)>(dlsym(library, "mll_sp_load"));
    s.free = reinterpret_cast<decltype(s.free)>(dlsym(library, "mll_sp_free"));
    s.piece_size = reinterpret_cast<decltype(s.piece_size)>(dlsym(library, "mll_sp_piece_size"));
    s.unk_id = reinterpret_cast<decltype(s.unk_id)>(dlsym(library, "mll_sp_unk_id"));
    s.encode = reinterpret_cast<decltype(s.encode)>(dlsym(library, "mll_sp_encode"));
  });
  if (s.load == nullptr || s.free == nullptr || s.piece_size == nullptr || s.unk_id == nullptr ||
      s.encode == nullptr) {
    MLL_THROW(DataError, "the SentencePiece support library of mll cannot be loaded (",
              error.empty() ? std::string("missing entry points") : error,
              "); set MLL_SENTENCEPIECE_SHIM to libmll_sentencepiece_shim.so");
  }
  return s;
}

class SentencePiece final : public Tokenizer {
 public:
  explicit SentencePiece(const TokenizerSpec& spec)
      : Tokenizer(spec.context_length), ids_(spec.sentencepiece), lower_(spec.lower_case) {
    if (spec.vocab_path.empty()) {
      MLL_THROW(DataError, "tokenizer kind 'sentencepiece' needs a model file (vocab path)");
    }
    fs::require_input_file(spec.vocab_path, "SentencePiece model");
    char error[512] = {0};
    processor_ = shim().load(spec.vocab_path.c_str(), error, sizeof error);
    if (processor_ == nullptr) {
      MLL_THROW(DataError, spec.vocab_path, ": not a SentencePiece model (", error, ")");
    }
    const std::int64_t pieces = shim().piece_size(processor_);
    vocab_size_ = std::max({pieces - 1 + ids_.offset, ids_.unk_id, ids_.first_id, ids_.last_id,
                            ids_.pad_id}) +
                  1;
    unk_ = shim().unk_id(processor_);
  }
  ~SentencePiece() override { shim().free(processor_); }
  SentencePiece(const SentencePiece&) = delete;
  SentencePiece& operator=(const SentencePiece&) = delete;

  const std::string& kind() const noexcept override { return kind_; }
  std::int64_t vocab_size() const noexcept override { return vocab_size_; }
  std::int64_t start_id() const noexcept override { return ids_.first_id; }
  std::int64_t end_id() const noexcept override { return ids_.last_id; }
  std::int64_t pad_id() const noexcept override { return ids_.pad_id; }

  std::vector<std::int64_t> encode(std::string_view text) const override {
    // open_clip's HFTokenizer cleans text as CLIP does before the HF tokenizer sees it.
    const std::string clean = clean_text(text, lower_);
    std::vector<int> pieces(clean.size() + 16);
    char error[512] = {0};
    int count = shim().encode(processor_, clean.c_str(), pieces.data(),
                              static_cast<int>(pieces.size()), error, sizeof error);
    if (count > static_cast<int>(pieces.size())) {
      pieces.resize(static_cast<std::size_t>(count));
      count = shim().encode(processor_, clean.c_str(), pieces.data(), count, error, sizeof error);
    }
    if (count < 0) MLL_THROW(InternalError, "SentencePiece failed: ", error);
    pieces.resize(static_cast<std::size_t>(count));
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
  void* processor_ = nullptr;  // owned; freed through the shim
  std::int64_t vocab_size_ = 0;
  int unk_ = 0;
};

}  // namespace

std::unique_ptr<Tokenizer> make_sentencepiece(const TokenizerSpec& spec) {
  return std::make_unique<SentencePiece>(spec);
}

}  // namespace mll::tokenize::detail
