// A C interface to libsentencepiece, built as its own shared object and loaded with
// dlopen(RTLD_LOCAL | RTLD_DEEPBIND) by sentencepiece.cpp.
//
// Why: libsentencepiece carries its own copy of protobuf(-lite) 3.14 while libtorch loads the
// system libprotobuf 3.21. In one symbol scope the two interpose: the process crashes in a static
// initialiser when libsentencepiece is searched first, and fails protobuf's version check when
// libprotobuf is. Loaded with RTLD_DEEPBIND, this shim and libsentencepiece resolve their own
// symbols first, so both libraries work in the same process (measured; see docs/tokenizers.md).
#include <sentencepiece_processor.h>

#include <cstring>
#include <string>
#include <vector>

namespace {

// Copies `text` into the caller's buffer (truncated, always terminated).
void copy_message(const std::string& text, char* buffer, int capacity) {
  if (buffer == nullptr || capacity <= 0) return;
  std::strncpy(buffer, text.c_str(), static_cast<std::size_t>(capacity - 1));
  buffer[capacity - 1] = '\0';
}

}  // namespace

extern "C" {

// Returns a processor handle, or nullptr with the reason in `error`.
void* mll_sp_load(const char* path, char* error, int error_capacity) {
  auto* processor = new (std::nothrow) sentencepiece::SentencePieceProcessor();
  if (processor == nullptr) {
    copy_message("out of memory", error, error_capacity);
    return nullptr;
  }
  const auto status = processor->Load(path);
  if (!status.ok()) {
    copy_message(status.ToString(), error, error_capacity);
    delete processor;
    return nullptr;
  }
  return processor;
}

void mll_sp_free(void* handle) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(handle);
}

int mll_sp_piece_size(void* handle) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->GetPieceSize();
}

int mll_sp_unk_id(void* handle) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->unk_id();
}

// Encodes `text`; writes up to `capacity` ids and returns how many there are (may exceed
// `capacity`: call again with a larger buffer), or -1 with the reason in `error`.
int mll_sp_encode(void* handle, const char* text, int* ids, int capacity, char* error,
                  int error_capacity) {
  std::vector<int> pieces;
  const auto status =
      static_cast<const sentencepiece::SentencePieceProcessor*>(handle)->Encode(text, &pieces);
  if (!status.ok()) {
    copy_message(status.ToString(), error, error_capacity);
    return -1;
  }
  for (std::size_t i = 0; i < pieces.size() && static_cast<int>(i) < capacity; ++i) {
    ids[i] = pieces[i];
  }
  return static_cast<int>(pieces.size());
}

}  // extern "C"
