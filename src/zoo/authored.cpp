// Authored TorchScript models, the light side: geometry, the cost model and the sidecar. The
// module itself is built and saved by the model engine (torch_authored.cpp, in libmll_torch.so).
#include "mll/zoo/authored.hpp"

#include <filesystem>

#include "authored_geometry.hpp"
#include "engine.hpp"
#include "mll/core/error.hpp"
#include "mll/core/model_id.hpp"

namespace mll::zoo {
namespace {

using namespace detail;  // the geometry constants

// Parameters and multiply-adds of one pre-LN transformer block of width c over n tokens with an
// MLP of 4c: ln1, in_proj (3c x c + 3c), out_proj, ln2, fc, proj.
std::int64_t block_params(std::int64_t c) { return 12 * c * c + 13 * c; }
std::int64_t block_macs(std::int64_t n, std::int64_t c) {
  return 12 * n * c * c + 2 * n * n * c;  // projections and MLP; q.k^T and att.v
}

struct Resolved {
  AuthoredModelParams p;
  bool vit = false;
};

Resolved resolve(const AuthoredModelParams& in) {
  Resolved r{in, false};
  AuthoredModelParams& p = r.p;
  if (p.kind == "vit-b32") {
    r.vit = true;
  } else if (p.kind != "small") {
    MLL_THROW(UsageError, "unknown authored model kind '", p.kind, "' (expected small or vit-b32)");
  }
  if (p.embed_dim == 0) p.embed_dim = r.vit ? 512 : 64;
  if (p.image_size == 0) p.image_size = kVitImage;
  if (p.embed_dim < 1 || p.embed_dim > 65536) {
    MLL_THROW(UsageError, "embed_dim must be in [1, 65536], got ", p.embed_dim);
  }
  if (p.context_length < 2) MLL_THROW(UsageError, "context_length must be at least 2");
  if (p.vocab_size < 2) MLL_THROW(UsageError, "vocab_size must be at least 2");
  if (r.vit) {
    if (p.image_size != kVitImage) {
      MLL_THROW(UsageError, "vit-b32 takes ", kVitImage, " px images, not ", p.image_size);
    }
    if (p.context_length > kTextMaxContext) {
      MLL_THROW(UsageError, "vit-b32's text tower takes at most ", kTextMaxContext, " tokens");
    }
  } else {
    if (p.small_grid < 1 || p.small_hidden < 1 || p.small_text_width < 1) {
      MLL_THROW(UsageError, "small_grid, small_hidden and small_text_width must be positive");
    }
    if (p.image_size < p.small_grid) {
      MLL_THROW(UsageError, "image_size ", p.image_size, " is below small_grid ", p.small_grid);
    }
  }
  return r;
}

ArchitectureCost cost_of(const Resolved& r) {
  const AuthoredModelParams& p = r.p;
  ArchitectureCost c;
  double image_macs = 0;
  double text_macs = 0;
  const std::int64_t d = p.embed_dim;
  if (r.vit) {
    const std::int64_t cw = kVitWidth;
    const std::int64_t patch = 3 * kVitPatch * kVitPatch;
    c.image_params = cw * patch + cw + kVitTokens * cw + 2 * cw + kVitLayers * block_params(cw) +
                     2 * cw + cw * d;
    image_macs = static_cast<double>(kVitGrid * kVitGrid) * patch * cw +
                 kVitLayers * static_cast<double>(block_macs(kVitTokens, cw)) +
                 static_cast<double>(cw) * d;
    const std::int64_t tw = kTextWidth;
    c.text_params = static_cast<std::int64_t>(p.vocab_size) * tw + kTextMaxContext * tw +
                    kTextLayers * block_params(tw) + 2 * tw + tw * d;
    text_macs = kTextLayers * static_cast<double>(block_macs(p.context_length, tw)) +
                static_cast<double>(tw) * d;
  } else {
    const std::int64_t f = 3 * static_cast<std::int64_t>(p.small_grid) * p.small_grid;
    const std::int64_t h = p.small_hidden;
    const std::int64_t e = p.small_text_width;
    c.image_params = h * f + h + d * h + d;
    c.text_params = static_cast<std::int64_t>(p.vocab_size) * e + d * e + d;
    // Average pooling touches every input value once; counted as one multiply-add each.
    image_macs =
        3.0 * p.image_size * p.image_size + static_cast<double>(f) * h + static_cast<double>(h) * d;
    text_macs = static_cast<double>(p.context_length) * e + static_cast<double>(e) * d;
  }
  c.params = c.image_params + c.text_params;
  c.gflops_per_image = 2.0 * image_macs / 1e9;
  c.gflops_per_text = 2.0 * text_macs / 1e9;
  return c;
}

}  // namespace

ArchitectureCost architecture_cost(const AuthoredModelParams& params) {
  return cost_of(resolve(params));
}

AuthoredModel write_authored_model(const AuthoredModelParams& params, const std::string& dir) {
  const Resolved r = resolve(params);
  const AuthoredModelParams& p = r.p;
  const ArchitectureCost cost = cost_of(r);

  AuthoredModel result;
  ModelSpec& spec = result.spec;
  spec.id = p.id;
  spec.model_file = model_file_stem(p.id) + ".pt";
  spec.image_size = p.image_size;
  spec.tokenizer.kind = "clip-bpe";
  spec.tokenizer.context_length = p.context_length;
  spec.logit_scale = p.logit_scale;
  spec.imagenet_top1 = p.imagenet_top1;
  spec.params = cost.params;
  spec.gflops_per_image = cost.gflops_per_image;
  spec.embed_dim = p.embed_dim;
  spec.base_dir = dir;
  const std::string sidecar = sidecar_json(spec);  // validates the id before anything is written

  result.model_path = (std::filesystem::path(dir) / spec.model_file).string();
  result.sidecar_path = (std::filesystem::path(dir) / (model_file_stem(p.id) + ".json")).string();

  detail::engine().save_authored({p, r.vit}, result.model_path);
  save_sidecar(spec, result.sidecar_path);
  return result;
}

void write_scripted_module(const std::string& path, const std::string& source,
                           const std::vector<NamedTensor>& tensors) {
  detail::engine().write_scripted_module(path, source, tensors);
}

}  // namespace mll::zoo
