// Running a model's two towers (design.md, "Models: what the runner loads").
//
// The runner owns libtorch: callers pass flat buffers with explicit shapes and get flat float32
// embeddings back, so no torch type crosses this header. Every embedding the runner returns is
// L2-normalised in float32 by the runner itself, whatever the model returns: open_clip exports
// (tools/export_openclip.py) and the authored models return raw, unnormalised features, and a
// model that already normalises is unaffected. Nothing here is collective.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mll/core/matrix.hpp"
#include "mll/zoo/model_spec.hpp"

namespace mll::zoo {

struct Device {
  enum class Kind { kCpu, kCuda };
  Kind kind = Kind::kCpu;
  int index = 0;  // CUDA ordinal; 0 for the CPU

  bool is_cuda() const noexcept { return kind == Kind::kCuda; }
  // "cpu" or "cuda:N". Does not throw.
  std::string str() const { return is_cuda() ? "cuda:" + std::to_string(index) : "cpu"; }
};

// Whether the libtorch this was built against has CUDA and a device is visible. Does not throw.
bool cuda_available() noexcept;
// Number of visible CUDA devices (0 without CUDA). Does not throw.
int cuda_device_count() noexcept;
// Free bytes on CUDA device `index` (-1 without CUDA or when the runtime cannot say). Does not
// throw.
std::int64_t cuda_free_memory(int index) noexcept;

// Parses "auto" | "cpu" | "cuda" | "cuda:N". "auto" is cuda:0 when CUDA is available, else the CPU
// (without loading the engine where no GPU driver is installed).
// Throws UsageError for other spellings and when CUDA (or device N) is requested but unavailable.
Device parse_device(const std::string& text);

// Sets libtorch's intra-op thread count for this process; libtorch uses 1 unless told. Does not
// load the engine: a count set before it loads is applied when it does. Throws UsageError when
// n < 1.
void set_threads(int n);
// The current intra-op thread count (the requested one while the engine is not loaded). Does not
// throw.
int threads() noexcept;

// Row-major [rows, dim] float32 embeddings, each row of unit L2 norm.

// The number format the towers run in. Outputs are always returned and normalised in float32.
enum class Precision { kFp32, kFp16, kBf16 };

// "fp32", "fp16", "bf16". Does not throw. (Inline: the model engine uses it too.)
inline std::string to_string(Precision precision) {
  return precision == Precision::kFp16 ? "fp16" : precision == Precision::kBf16 ? "bf16" : "fp32";
}
// "auto" (fp16 on CUDA, fp32 on the CPU), "fp32", "fp16" or "bf16" for `device`. Throws
// UsageError for another word, and for fp16 on the CPU (half-precision kernels are missing or
// slow there; bf16 runs).
Precision parse_precision(const std::string& text, const Device& device);

struct RunOptions {
  Device device;
  Precision precision = Precision::kFp32;
};

// One loaded model. Loading and encoding run under c10::InferenceMode. Concurrent encode calls on
// one Model are safe (TorchScript methods are reentrant); the model is not copyable.
class Model {
 public:
  // Loads spec.model_path() onto opts.device. Throws DataError naming the file when it is missing,
  // empty, not a TorchScript archive, or lacks encode_image / encode_text; UsageError when
  // opts.device is unavailable.
  Model(const ModelSpec& spec, const RunOptions& opts = {});

  // Loads a bare TorchScript file without a sidecar (the id is the file name). Image size and
  // context length are then not checked. Throws as above.
  static Model from_file(const std::string& path, const RunOptions& opts = {});

  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // Encodes `batch` images, `chw` holding batch x 3 x h x w float32 (already normalised).
  // Throws UsageError when batch < 1 or h, w < 1; DataError naming the model when h or w differs
  // from the sidecar's image_size, when the model fails on the input, or when its output is not a
  // [batch, d] floating tensor (d equal to the text tower's and the sidecar's embed_dim), contains
  // NaN/Inf, or has an all-zero row.
  Matrix encode_images(const float* chw, int batch, int h, int w) const;
  // As encode_images, for the last reader of `chw`: the model may overwrite it, which spares the
  // copy that protects the caller's buffer (on the CPU the buffer itself is the module's input).
  Matrix encode_images_consuming(float* chw, int batch, int h, int w) const;

  // Encodes `batch` token sequences of length `len` (int64 ids). Throws as encode_images, with the
  // sidecar's tokenizer.context_length in place of the image size.
  Matrix encode_text(const std::int64_t* ids, int batch, int len) const;

  const std::string& id() const noexcept;
  const std::string& path() const noexcept;
  const ModelSpec& spec() const noexcept;
  Device device() const noexcept;
  Precision precision() const noexcept;
  // Number of parameter elements of the loaded module. Does not throw.
  std::int64_t parameter_count() const noexcept;
  // Embedding width once a tower has run (or from the sidecar's embed_dim); -1 before. No throw.
  std::int64_t embed_dim() const noexcept;
  // SHA-256 of the model file, computed once on first use. Throws IoError.
  const std::string& file_sha256() const;

 private:
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);
  static std::unique_ptr<Impl> load(ModelSpec spec, bool has_spec, RunOptions opts);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mll::zoo
