// libmll_torch.so, part 2 (engine.hpp): authored TorchScript models. The method bodies are
// TorchScript source compiled by libtorch's script compiler (Module::define), so the saved
// archive is indistinguishable from one scripted in Python and loads in both.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/script.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "authored_geometry.hpp"
#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "torch_engine.hpp"
#include "torch_util.hpp"

namespace mll::zoo::detail {
namespace {

// Replaces every "{{KEY}}" in `text`.
std::string fill(std::string text, const std::vector<std::pair<std::string, std::string>>& subs) {
  for (const auto& [key, value] : subs) {
    const std::string marker = "{{" + key + "}}";
    for (auto pos = text.find(marker); pos != std::string::npos; pos = text.find(marker, pos)) {
      text.replace(pos, marker.size(), value);
      pos += value.size();
    }
  }
  return text;
}

const char* const kSmallSource = R"(
def encode_image(self, x: Tensor) -> Tensor:
    B = x.size(0)
    C = x.size(1)
    H = x.size(2)
    W = x.size(3)
    if H % {{G}} == 0 and W % {{G}} == 0:
        # The same means as adaptive_avg_pool2d, as two vectorised reductions (over the rows of
        # each window, then its columns): 2-3x less CPU time than that operator's scalar loop.
        rows = x.reshape([B, C, {{G}}, H // {{G}}, W]).mean(3)
        pooled = rows.reshape([B, C, {{G}}, {{G}}, W // {{G}}]).mean(4).flatten(1)
    else:
        pooled = torch.adaptive_avg_pool2d(x, [{{G}}, {{G}}]).flatten(1)
    h = torch.tanh(torch.matmul(pooled, self.image_w1.t()) + self.image_b1)
    return torch.matmul(h, self.image_w2.t()) + self.image_b2

def encode_text(self, text: Tensor) -> Tensor:
    keep = (text != 0).unsqueeze(-1).to(self.token_embedding.dtype)
    summed = (torch.embedding(self.token_embedding, text) * keep).sum(1)
    pooled = summed / keep.sum(1).clamp_min(1.0)
    return torch.matmul(pooled, self.text_w.t()) + self.text_b
)";

// Pre-LN residual attention block as in CLIP / open_clip, with stacked per-layer weights.
const char* const kBlockSource = R"(
def _block(self, x: Tensor, ln1_w: Tensor, ln1_b: Tensor, in_w: Tensor, in_b: Tensor,
           out_w: Tensor, out_b: Tensor, ln2_w: Tensor, ln2_b: Tensor, fc_w: Tensor,
           fc_b: Tensor, pr_w: Tensor, pr_b: Tensor, heads: int, mask: Optional[Tensor]) -> Tensor:
    B = x.size(0)
    N = x.size(1)
    C = x.size(2)
    hd = C // heads
    h = torch.layer_norm(x, [C], ln1_w, ln1_b, 1e-5)
    qkv = (torch.matmul(h, in_w.t()) + in_b).reshape([B, N, 3, heads, hd]).permute(2, 0, 3, 1, 4)
    q = qkv[0] * (float(hd) ** -0.5)
    att = torch.matmul(q, qkv[1].transpose(-2, -1))
    if mask is not None:
        att = att + mask
    att = torch.softmax(att, -1)
    o = torch.matmul(att, qkv[2]).permute(0, 2, 1, 3).reshape([B, N, C])
    x = x + (torch.matmul(o, out_w.t()) + out_b)
    h = torch.layer_norm(x, [C], ln2_w, ln2_b, 1e-5)
    h = torch.gelu(torch.matmul(h, fc_w.t()) + fc_b)
    return x + (torch.matmul(h, pr_w.t()) + pr_b)

def encode_image(self, x: Tensor) -> Tensor:
    B = x.size(0)
    p = x.reshape([B, 3, {{GRID}}, {{PATCH}}, {{GRID}}, {{PATCH}}]).permute(0, 2, 4, 1, 3, 5)
    t = torch.matmul(p.reshape([B, {{GRID}} * {{GRID}}, 3 * {{PATCH}} * {{PATCH}}]), self.v_patch_w.t())
    cls = self.v_class.reshape([1, 1, {{VW}}]).expand([B, 1, {{VW}}])
    t = torch.cat([cls, t], 1) + self.v_pos
    t = torch.layer_norm(t, [{{VW}}], self.v_ln_pre_w, self.v_ln_pre_b, 1e-5)
    for i in range({{VL}}):
        t = self._block(t, self.v_ln1_w[i], self.v_ln1_b[i], self.v_in_w[i], self.v_in_b[i],
                        self.v_out_w[i], self.v_out_b[i], self.v_ln2_w[i], self.v_ln2_b[i],
                        self.v_fc_w[i], self.v_fc_b[i], self.v_pr_w[i], self.v_pr_b[i],
                        {{VH}}, None)
    t = torch.layer_norm(t[:, 0], [{{VW}}], self.v_ln_post_w, self.v_ln_post_b, 1e-5)
    return torch.matmul(t, self.v_proj)

def encode_text(self, text: Tensor) -> Tensor:
    B = text.size(0)
    L = text.size(1)
    x = torch.embedding(self.t_tok, text) + self.t_pos[:L]
    mask = self.t_mask[:L, :L]
    for i in range({{TL}}):
        x = self._block(x, self.t_ln1_w[i], self.t_ln1_b[i], self.t_in_w[i], self.t_in_b[i],
                        self.t_out_w[i], self.t_out_b[i], self.t_ln2_w[i], self.t_ln2_b[i],
                        self.t_fc_w[i], self.t_fc_b[i], self.t_pr_w[i], self.t_pr_b[i],
                        {{TH}}, mask)
    x = torch.layer_norm(x, [{{TW}}], self.t_ln_f_w, self.t_ln_f_b, 1e-5)
    # Pool at the end-of-text token, which has the largest id in CLIP's vocabulary.
    x = x[torch.arange(B, device=x.device), text.argmax(-1)]
    return torch.matmul(x, self.t_proj)
)";

class Builder {
 public:
  explicit Builder(std::uint64_t seed)
      : module_("MllAuthoredVLM"), gen_(at::detail::createCPUGenerator(seed)) {}

  at::Tensor normal(std::vector<std::int64_t> shape, double std) {
    return at::randn(shape, gen_, at::TensorOptions().dtype(at::kFloat)) * std;
  }

  void param(const std::string& name, at::Tensor t) {
    module_.register_parameter(name, std::move(t), /*is_buffer=*/false);
  }
  void buffer(const std::string& name, at::Tensor t) {
    module_.register_buffer(name, std::move(t));
  }

  // Stacked weights of `layers` transformer blocks of width c under prefix ("v_" / "t_").
  void blocks(const std::string& prefix, std::int64_t layers, std::int64_t c) {
    const double attn_std = std::pow(static_cast<double>(c), -0.5);
    const double proj_std = attn_std * std::pow(2.0 * static_cast<double>(layers), -0.5);
    const double fc_std = std::pow(2.0 * static_cast<double>(c), -0.5);
    param(prefix + "ln1_w", at::ones({layers, c}));
    param(prefix + "ln1_b", at::zeros({layers, c}));
    param(prefix + "in_w", normal({layers, 3 * c, c}, attn_std));
    param(prefix + "in_b", at::zeros({layers, 3 * c}));
    param(prefix + "out_w", normal({layers, c, c}, proj_std));
    param(prefix + "out_b", at::zeros({layers, c}));
    param(prefix + "ln2_w", at::ones({layers, c}));
    param(prefix + "ln2_b", at::zeros({layers, c}));
    param(prefix + "fc_w", normal({layers, 4 * c, c}, fc_std));
    param(prefix + "fc_b", at::zeros({layers, 4 * c}));
    param(prefix + "pr_w", normal({layers, c, 4 * c}, proj_std));
    param(prefix + "pr_b", at::zeros({layers, c}));
  }

  torch::jit::Module& module() { return module_; }

 private:
  torch::jit::Module module_;
  at::Generator gen_;
};

at::Tensor explicit_or(const std::optional<std::vector<float>>& given, at::Tensor drawn,
                       const char* name) {
  if (!given) return drawn;
  if (static_cast<std::int64_t>(given->size()) != drawn.numel()) {
    MLL_THROW(UsageError, "explicit weight '", name, "' has ", given->size(),
              " values; its shape needs ", drawn.numel());
  }
  return at::tensor(*given, at::kFloat).reshape(drawn.sizes()).clone();
}

void build_small(Builder& b, const AuthoredModelParams& p) {
  const std::int64_t f = 3 * static_cast<std::int64_t>(p.small_grid) * p.small_grid;
  const std::int64_t h = p.small_hidden;
  const std::int64_t d = p.embed_dim;
  const std::int64_t e = p.small_text_width;
  const SmallWeights& w = p.weights;
  // Drawn in a fixed order whether or not explicit weights replace them, so that setting one
  // weight leaves the random draws of the others unchanged.
  at::Tensor w1 = b.normal({h, f}, 1.0 / std::sqrt(static_cast<double>(f)));
  at::Tensor b1 = b.normal({h}, 0.1);
  at::Tensor w2 = b.normal({d, h}, 1.0 / std::sqrt(static_cast<double>(h)));
  at::Tensor b2 = b.normal({d}, 0.1);
  at::Tensor tok = b.normal({p.vocab_size, e}, 1.0);
  at::Tensor tw = b.normal({d, e}, 1.0 / std::sqrt(static_cast<double>(e)));
  at::Tensor tb = b.normal({d}, 0.1);
  b.param("image_w1", explicit_or(w.image_w1, w1, "image_w1"));
  b.param("image_b1", explicit_or(w.image_b1, b1, "image_b1"));
  b.param("image_w2", explicit_or(w.image_w2, w2, "image_w2"));
  b.param("image_b2", explicit_or(w.image_b2, b2, "image_b2"));
  b.param("token_embedding", explicit_or(w.token_embedding, tok, "token_embedding"));
  b.param("text_w", explicit_or(w.text_w, tw, "text_w"));
  b.param("text_b", explicit_or(w.text_b, tb, "text_b"));
  b.module().define(fill(kSmallSource, {{"G", std::to_string(p.small_grid)}}));
}

void build_vit(Builder& b, const AuthoredModelParams& p) {
  const std::int64_t vw = kVitWidth;
  const std::int64_t tw = kTextWidth;
  const std::int64_t d = p.embed_dim;
  const double vscale = std::pow(static_cast<double>(vw), -0.5);
  const double tscale = std::pow(static_cast<double>(tw), -0.5);
  // Initialisation follows open_clip's (CLIP paper) scheme so activations keep a sane range.
  b.param("v_patch_w", b.normal({vw, 3 * kVitPatch * kVitPatch}, vscale));
  b.param("v_class", b.normal({vw}, vscale));
  b.param("v_pos", b.normal({kVitTokens, vw}, vscale));
  b.param("v_ln_pre_w", at::ones({vw}));
  b.param("v_ln_pre_b", at::zeros({vw}));
  b.blocks("v_", kVitLayers, vw);
  b.param("v_ln_post_w", at::ones({vw}));
  b.param("v_ln_post_b", at::zeros({vw}));
  b.param("v_proj", b.normal({vw, d}, vscale));

  b.param("t_tok", b.normal({p.vocab_size, tw}, 0.02));
  b.param("t_pos", b.normal({kTextMaxContext, tw}, 0.01));
  b.blocks("t_", kTextLayers, tw);
  b.param("t_ln_f_w", at::ones({tw}));
  b.param("t_ln_f_b", at::zeros({tw}));
  b.param("t_proj", b.normal({tw, d}, tscale));
  // Causal mask: a buffer, not a parameter (as in open_clip), so it is not counted in params.
  b.buffer("t_mask",
           at::full({kTextMaxContext, kTextMaxContext}, -std::numeric_limits<float>::infinity())
               .triu(1));
  b.module().define(fill(kBlockSource, {{"GRID", std::to_string(kVitGrid)},
                                        {"PATCH", std::to_string(kVitPatch)},
                                        {"VW", std::to_string(kVitWidth)},
                                        {"VL", std::to_string(kVitLayers)},
                                        {"VH", std::to_string(kVitHeads)},
                                        {"TW", std::to_string(kTextWidth)},
                                        {"TL", std::to_string(kTextLayers)},
                                        {"TH", std::to_string(kTextHeads)}}));
}

// Saving through a stream names the archive's root folder "archive" instead of after the
// (temporary, pid-suffixed) file name, which keeps the bytes independent of where it is written.
void save_module(const torch::jit::Module& module, const std::string& path) {
  fs::AtomicOutput out(path);
  {
    std::ofstream file(out.temp_path(), std::ios::binary | std::ios::trunc);
    if (!file) MLL_THROW(IoError, path, ": cannot open for writing");
    try {
      module.save(file);
    } catch (const std::exception& e) {
      MLL_THROW(IoError, path, ": writing the TorchScript archive failed: ", torch_message(e));
    }
    file.flush();
    if (!file) MLL_THROW(IoError, path, ": write failed");
  }
  out.commit();
}

}  // namespace

void TorchEngine::save_authored(const AuthoredBuild& build, const std::string& path) const {
  const AuthoredModelParams& p = build.params;
  Builder builder(p.seed);
  try {
    if (build.vit) {
      build_vit(builder, p);
    } else {
      build_small(builder, p);
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    MLL_THROW(InternalError, "authoring a ", p.kind, " model failed: ", torch_message(e));
  }
  save_module(builder.module(), path);
}

void TorchEngine::write_scripted_module(const std::string& path, const std::string& source,
                                        const std::vector<NamedTensor>& tensors) const {
  torch::jit::Module module("MllScriptedModule");
  for (const auto& t : tensors) {
    std::int64_t n = 1;
    for (const auto s : t.shape) n *= s;
    if (n != static_cast<std::int64_t>(t.data.size())) {
      MLL_THROW(UsageError, "tensor '", t.name, "': ", t.data.size(),
                " values do not fill its shape (", n, " needed)");
    }
    module.register_parameter(t.name, at::tensor(t.data, at::kFloat).reshape(t.shape).clone(),
                              false);
  }
  try {
    module.define(source);
  } catch (const std::exception& e) {
    MLL_THROW(UsageError, "TorchScript source does not compile: ", torch_message(e));
  }
  save_module(module, path);
}

}  // namespace mll::zoo::detail
