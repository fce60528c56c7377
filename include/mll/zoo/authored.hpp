// Vision-language models authored in C++ as TorchScript (no Python needed).
//
// Tests, the demo and the benchmarks need models that obey the runner's contract without any
// downloadable weights: "small" ones that run in milliseconds and whose weights a caller may set
// (the synthetic world builds specialists this way), and a "vit-b32" one with the compute shape of
// open_clip's ViT-B-32 so that performance work sees realistic cost. Weights not given explicitly
// are drawn from a seeded generator: the same parameters give a byte-identical file.
// Nothing here is collective.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mll/zoo/model_spec.hpp"

namespace mll::zoo {

// Explicit weights for the small kind, each row-major float32 with the shape noted
// (G = small_grid, F = 3*G*G, H = small_hidden, D = embed_dim, V = vocab_size, E =
// small_text_width). Any weight left empty is drawn from the seed.
struct SmallWeights {
  std::optional<std::vector<float>> image_w1;         // [H, F]  pooled pixels -> hidden
  std::optional<std::vector<float>> image_b1;         // [H]
  std::optional<std::vector<float>> image_w2;         // [D, H]  hidden -> embedding
  std::optional<std::vector<float>> image_b2;         // [D]
  std::optional<std::vector<float>> token_embedding;  // [V, E]
  std::optional<std::vector<float>> text_w;           // [D, E]
  std::optional<std::vector<float>> text_b;           // [D]
};

struct AuthoredModelParams {
  std::string kind = "small";  // "small" | "vit-b32"
  std::string id = "authored";
  std::uint64_t seed = 0;
  int embed_dim = 0;  // 0: 64 for small, 512 for vit-b32

  // Sidecar fields that are not fixed by the architecture.
  int image_size = 0;  // 0: 224 (vit-b32 requires 224)
  int context_length = 77;
  int vocab_size = 49408;  // CLIP BPE's; token ids must lie in [0, vocab_size)
  double logit_scale = 100.0;
  std::optional<double> imagenet_top1;

  // Small kind only.
  int small_grid = 4;         // images are average-pooled to G x G before the MLP
  int small_hidden = 64;      // H
  int small_text_width = 32;  // E
  SmallWeights weights;
};

// What write_authored_model produced.
struct AuthoredModel {
  ModelSpec spec;            // as saved (base_dir = the output directory)
  std::string model_path;    // <dir>/<id>.pt
  std::string sidecar_path;  // <dir>/<id>.json
};

// Architecture figures without building anything: parameter count (both towers) and image-tower
// GFLOPs (2 x multiply-adds, open_clip's model_profile.csv definition). Throws UsageError for an
// unknown kind or invalid sizes.
struct ArchitectureCost {
  std::int64_t params = 0;
  std::int64_t image_params = 0;
  std::int64_t text_params = 0;
  double gflops_per_image = 0.0;
  double gflops_per_text = 0.0;
};
ArchitectureCost architecture_cost(const AuthoredModelParams& params);

// Builds the model and writes <dir>/<id>.pt and <dir>/<id>.json, each atomically. `dir` must
// exist. Throws UsageError (unknown kind, bad sizes, explicit weights of the wrong length, an id
// that is not a valid model id), IoError (write failed).
AuthoredModel write_authored_model(const AuthoredModelParams& params, const std::string& dir);

// A named float32 tensor for write_scripted_module.
struct NamedTensor {
  std::string name;
  std::vector<std::int64_t> shape;
  std::vector<float> data;  // row-major; size = product of shape
};

// Writes a TorchScript module with the given parameters and methods, `source` being TorchScript
// method definitions (aten spellings: torch.softmax, torch.layer_norm, ...). For tests of broken
// or unusual models and for debugging. Throws UsageError when the source does not compile or a
// tensor's data does not match its shape, IoError when writing fails.
void write_scripted_module(const std::string& path, const std::string& source,
                           const std::vector<NamedTensor>& tensors = {});

}  // namespace mll::zoo
