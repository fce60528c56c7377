// The only translation unit besides authored.cpp that includes libtorch (compile cost, see
// docs/models.md); everything torch-specific about running a model lives here.
#include "mll/zoo/runner.hpp"

#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <dlfcn.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <regex>

#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/core/hash.hpp"
#include "mll/core/log.hpp"
#include "torch_util.hpp"

namespace mll::zoo {
namespace stdfs = std::filesystem;

std::string Device::str() const { return is_cuda() ? cat("cuda:", index) : std::string("cpu"); }

bool cuda_available() noexcept {
  try {
    return torch::cuda::is_available();
  } catch (...) {
    return false;
  }
}

int cuda_device_count() noexcept {
  try {
    return cuda_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  } catch (...) {
    return 0;
  }
}

Device parse_device(const std::string& text) {
  Device d;
  if (text == "cpu") return d;
  if (text == "auto") {
    if (cuda_available()) d.kind = Device::Kind::kCuda;
    return d;
  }
  static const std::regex cuda_re("cuda(?::([0-9]{1,4}))?");
  std::smatch m;
  if (!std::regex_match(text, m, cuda_re)) {
    MLL_THROW(UsageError, "unknown device '", text, "' (expected auto, cpu, cuda or cuda:N)");
  }
  d.kind = Device::Kind::kCuda;
  d.index = m[1].matched ? std::stoi(m[1].str()) : 0;
  if (!cuda_available()) {
    MLL_THROW(UsageError, "device '", text,
              "' requested but CUDA is not available (this libtorch has no CUDA or no GPU is "
              "visible); use --device cpu or build against a CUDA libtorch with -DTorch_DIR");
  }
  if (d.index >= cuda_device_count()) {
    MLL_THROW(UsageError, "device '", text, "' requested but only ", cuda_device_count(),
              " CUDA device(s) are visible");
  }
  return d;
}

void set_threads(int n) {
  if (n < 1) MLL_THROW(UsageError, "thread count must be at least 1, got ", n);
  at::set_num_threads(n);
  // Debian's libtorch does its matrix products in OpenBLAS, whose own thread pool ignores
  // at::set_num_threads and would otherwise use every core on top of ATen's threads (measured:
  // "1 thread" ran on 2 cores). Looked up at run time since the BLAS is libtorch's choice.
  using SetThreads = void (*)(int);
  if (auto* openblas =
          reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    openblas(n);
  }
}

int threads() noexcept { return at::get_num_threads(); }

struct Model::Impl {
  ModelSpec spec;
  bool has_spec = true;
  RunOptions opts;
  std::string path;
  torch::jit::Module module;
  std::int64_t params = 0;
  mutable std::atomic<std::int64_t> dim{-1};
  mutable std::once_flag sha_once;
  mutable std::string sha;

  at::Device torch_device() const {
    return opts.device.is_cuda()
               ? at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(opts.device.index))
               : at::Device(at::kCPU);
  }

  Matrix run(const char* method, at::Tensor input, int batch) const;
};

std::unique_ptr<Model::Impl> Model::load(ModelSpec spec, bool has_spec, RunOptions opts) {
  auto impl = std::make_unique<Model::Impl>();
  impl->path = spec.model_path();
  impl->spec = std::move(spec);
  impl->has_spec = has_spec;
  if (!opts.device.is_cuda()) opts.half = false;
  if (opts.device.is_cuda() && (!cuda_available() || opts.device.index >= cuda_device_count())) {
    MLL_THROW(UsageError, impl->spec.id, ": device ", opts.device.str(), " is not available");
  }
  impl->opts = opts;
  const std::string& path = impl->path;
  fs::require_input_file(path, "model file");
  std::error_code ec;
  if (stdfs::file_size(path, ec) == 0) {
    MLL_THROW(DataError, path, ": model file is empty, not a TorchScript archive");
  }
  try {
    torch::NoGradGuard no_grad;
    impl->module = torch::jit::load(path, impl->torch_device());
    impl->module.eval();
    if (impl->opts.half) impl->module.to(at::kHalf);
  } catch (const std::exception& e) {
    MLL_THROW(DataError, path, ": not a loadable TorchScript archive (", detail::torch_message(e),
              ")");
  }
  for (const char* method : {"encode_image", "encode_text"}) {
    if (!impl->module.find_method(method)) {
      MLL_THROW(DataError, path, ": TorchScript module has no method '", method,
                "' (a model must define encode_image and encode_text)");
    }
  }
  for (const auto& p : impl->module.parameters(/*recurse=*/true)) impl->params += p.numel();
  if (impl->spec.embed_dim) impl->dim = *impl->spec.embed_dim;
  log::debug("loaded model '", impl->spec.id, "' from ", path, " on ", opts.device.str(),
             impl->opts.half ? " (float16)" : "", ": ", impl->params, " parameters");
  return impl;
}

namespace {

std::string shape_str(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += cat(i ? ", " : "", t.size(i));
  return s + "]";
}

}  // namespace

Matrix Model::Impl::run(const char* method, at::Tensor input, int batch) const {
  const std::string& id = spec.id;
  c10::InferenceMode guard;
  input = input.to(torch_device());
  if (opts.half && input.is_floating_point()) input = input.to(at::kHalf);
  c10::IValue out;
  try {
    out = module.get_method(method)({input});
  } catch (const std::exception& e) {
    MLL_THROW(DataError, "model '", id, "' (", path, "): ", method, " failed on a ",
              shape_str(input), " input: ", detail::torch_message(e));
  }
  if (!out.isTensor()) {
    MLL_THROW(DataError, "model '", id, "' (", path, "): ", method, " returned ", out.tagKind(),
              " instead of a tensor");
  }
  at::Tensor t = out.toTensor();
  if (t.dim() != 2 || t.size(0) != batch) {
    MLL_THROW(DataError, "model '", id, "' (", path, "): ", method, " returned shape ",
              shape_str(t), " for a batch of ", batch, "; expected [", batch, ", d]");
  }
  if (!t.is_floating_point()) {
    MLL_THROW(DataError, "model '", id, "' (", path, "): ", method, " returned ", t.scalar_type(),
              " values; expected floating point");
  }
  if (t.size(1) < 1) {
    MLL_THROW(DataError, "model '", id, "' (", path, "): ", method, " returned zero-width rows");
  }
  t = t.to(at::kCPU, at::kFloat).contiguous();
  const at::Tensor bad_rows = (~torch::isfinite(t)).any(1);
  if (bad_rows.any().item<bool>()) {
    MLL_THROW(DataError, "model '", id, "' (", path, "): ", method,
              " returned NaN or Inf (first in row ", bad_rows.nonzero()[0][0].item<int64_t>(), ")");
  }
  const at::Tensor norms = t.norm(2, {1}, /*keepdim=*/true);
  const at::Tensor zero_rows = (norms == 0).reshape({-1});
  if (zero_rows.any().item<bool>()) {
    MLL_THROW(DataError, "model '", id, "' (", path, "): ", method,
              " returned an all-zero row (row ", zero_rows.nonzero()[0][0].item<int64_t>(),
              "), which cannot be normalised");
  }
  t = t / norms;

  const std::int64_t d = t.size(1);
  std::int64_t expected = -1;
  if (!dim.compare_exchange_strong(expected, d) && expected != d) {
    const bool from_sidecar = spec.embed_dim && *spec.embed_dim == expected;
    MLL_THROW(DataError, "model '", id, "' (", path, "): ", method, " returns width ", d, " but ",
              from_sidecar ? "the sidecar's embed_dim is " : "the other tower returns ", expected);
  }

  Matrix e;
  e.rows = batch;
  e.cols = d;
  e.values.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  return e;
}

Model::Model(const ModelSpec& spec, const RunOptions& opts) : impl_(load(spec, true, opts)) {}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Model Model::from_file(const std::string& path, const RunOptions& opts) {
  ModelSpec spec;
  spec.id = stdfs::path(path).filename().string();
  spec.model_file = path;
  return Model(load(spec, false, opts));
}

Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

Matrix Model::encode_images(const float* chw, int batch, int h, int w) const {
  if (batch < 1 || h < 1 || w < 1) {
    MLL_THROW(UsageError, "encode_images: bad batch shape ", batch, "x3x", h, "x", w);
  }
  const ModelSpec& spec = impl_->spec;
  if (impl_->has_spec && (h != spec.image_size || w != spec.image_size)) {
    MLL_THROW(DataError, "model '", spec.id, "': expects ", spec.image_size, "x", spec.image_size,
              " images (sidecar image_size), got ", h, "x", w);
  }
  // A copy, so that a module that writes into its input can never alter the caller's buffer.
  at::Tensor input =
      torch::from_blob(const_cast<float*>(chw), {batch, 3, h, w}, at::kFloat).clone();
  return impl_->run("encode_image", input, batch);
}

Matrix Model::encode_text(const std::int64_t* ids, int batch, int len) const {
  if (batch < 1 || len < 1) MLL_THROW(UsageError, "encode_text: bad batch shape ", batch, "x", len);
  const ModelSpec& spec = impl_->spec;
  if (impl_->has_spec && len != spec.tokenizer.context_length) {
    MLL_THROW(DataError, "model '", spec.id, "': expects token sequences of length ",
              spec.tokenizer.context_length, " (sidecar tokenizer.context_length), got ", len);
  }
  at::Tensor input =
      torch::from_blob(const_cast<std::int64_t*>(ids), {batch, len}, at::kLong).clone();
  return impl_->run("encode_text", input, batch);
}

const std::string& Model::id() const noexcept { return impl_->spec.id; }
const std::string& Model::path() const noexcept { return impl_->path; }
const ModelSpec& Model::spec() const noexcept { return impl_->spec; }
Device Model::device() const noexcept { return impl_->opts.device; }
bool Model::half() const noexcept { return impl_->opts.half; }
std::int64_t Model::parameter_count() const noexcept { return impl_->params; }
std::int64_t Model::embed_dim() const noexcept { return impl_->dim.load(); }

const std::string& Model::file_sha256() const {
  std::call_once(impl_->sha_once, [this] { impl_->sha = sha256_file(impl_->path); });
  return impl_->sha;
}

}  // namespace mll::zoo
