// libmll_torch.so, part 1 (engine.hpp says why it is a library of its own): loading and
// running TorchScript models. With torch_authored.cpp the only code of mll that includes
// libtorch; everything torch-specific about running a model lives here.
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <atomic>
#include <filesystem>
#include <mutex>

#include "engine.hpp"
#include "mll/core/error.hpp"
#include "mll/core/fs.hpp"
#include "mll/core/log.hpp"
#include "torch_engine.hpp"
#include "torch_util.hpp"

namespace mll::zoo::detail {
namespace stdfs = std::filesystem;
namespace {

std::string shape_str(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += cat(i ? ", " : "", t.size(i));
  return s + "]";
}

class TorchModel final : public LoadedModel {
 public:
  Matrix encode_images(const float* chw, int batch, int h, int w) const override;
  Matrix encode_images_consuming(float* chw, int batch, int h, int w) const override;
  void check_image_shape(int batch, int h, int w) const;
  Matrix encode_text(const std::int64_t* ids, int batch, int len) const override;
  std::int64_t parameter_count() const noexcept override { return params; }
  std::int64_t embed_dim() const noexcept override { return dim.load(); }

  at::Device torch_device() const {
    return opts.device.is_cuda()
               ? at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(opts.device.index))
               : at::Device(at::kCPU);
  }
  Matrix run(const char* method, at::Tensor input, int batch) const;
  bool reduced() const { return opts.precision != Precision::kFp32; }
  at::ScalarType scalar_type() const {
    return opts.precision == Precision::kFp16   ? at::kHalf
           : opts.precision == Precision::kBf16 ? at::kBFloat16
                                                : at::kFloat;
  }

  torch::jit::Module module;
  std::int64_t params = 0;
  // The CPU input of encode_images, reused across batches: a fresh 19 MB tensor per batch cost as
  // much as the forward pass of a small model in page faults (measured: 0.25 ms per image each).
  mutable std::mutex input_mutex;
  mutable at::Tensor image_input;
  mutable std::atomic<std::int64_t> dim{-1};
};

Matrix TorchModel::run(const char* method, at::Tensor input, int batch) const {
  const std::string& id = spec.id;
  c10::InferenceMode guard;
  input = input.to(torch_device());
  if (reduced() && input.is_floating_point()) input = input.to(scalar_type());
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

void TorchModel::check_image_shape(int batch, int h, int w) const {
  if (batch < 1 || h < 1 || w < 1) {
    MLL_THROW(UsageError, "encode_images: bad batch shape ", batch, "x3x", h, "x", w);
  }
  if (has_spec && (h != spec.image_size || w != spec.image_size)) {
    MLL_THROW(DataError, "model '", spec.id, "': expects ", spec.image_size, "x", spec.image_size,
              " images (sidecar image_size), got ", h, "x", w);
  }
}

Matrix TorchModel::encode_images_consuming(float* chw, int batch, int h, int w) const {
  check_image_shape(batch, h, w);
  // The caller's buffer is the module's input (on the CPU no copy at all): 0.1-0.2 ms per 224 px
  // image saved, as much as a small model's whole forward pass.
  return run("encode_image", torch::from_blob(chw, {batch, 3, h, w}, at::kFloat), batch);
}

Matrix TorchModel::encode_images(const float* chw, int batch, int h, int w) const {
  check_image_shape(batch, h, w);
  // The module gets a copy, so that one that writes into its input can never alter the caller's
  // buffer (the other models of a group read it next).
  const at::Tensor source = torch::from_blob(const_cast<float*>(chw), {batch, 3, h, w}, at::kFloat);
  if (opts.device.is_cuda()) return run("encode_image", source.to(torch_device()), batch);
  std::lock_guard lock(input_mutex);
  if (!image_input.defined() || image_input.sizes() != source.sizes()) {
    image_input = at::empty(source.sizes(), at::kFloat);
  }
  image_input.copy_(source);
  return run("encode_image", image_input, batch);
}

Matrix TorchModel::encode_text(const std::int64_t* ids, int batch, int len) const {
  if (batch < 1 || len < 1) MLL_THROW(UsageError, "encode_text: bad batch shape ", batch, "x", len);
  if (has_spec && len != spec.tokenizer.context_length) {
    MLL_THROW(DataError, "model '", spec.id, "': expects token sequences of length ",
              spec.tokenizer.context_length, " (sidecar tokenizer.context_length), got ", len);
  }
  at::Tensor input =
      torch::from_blob(const_cast<std::int64_t*>(ids), {batch, len}, at::kLong).clone();
  return run("encode_text", input, batch);
}

}  // namespace

bool TorchEngine::cuda_available() const noexcept {
  try {
    return torch::cuda::is_available();
  } catch (...) {
    return false;
  }
}

int TorchEngine::cuda_device_count() const noexcept {
  try {
    return cuda_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  } catch (...) {
    return 0;
  }
}

std::int64_t TorchEngine::cuda_free_memory(int index) const noexcept {
  if (index < 0 || index >= cuda_device_count()) return -1;
  // The CUDA runtime comes with a CUDA build of libtorch; its functions are looked up at run time
  // so that this file builds against the CPU-only libtorch too (which has no CUDA headers).
  using SetDevice = int (*)(int);
  using MemGetInfo = int (*)(std::size_t*, std::size_t*);
  const auto set_device = reinterpret_cast<SetDevice>(dlsym(RTLD_DEFAULT, "cudaSetDevice"));
  const auto mem_get_info = reinterpret_cast<MemGetInfo>(dlsym(RTLD_DEFAULT, "cudaMemGetInfo"));
  std::size_t free = 0, total = 0;
  if (set_device == nullptr || mem_get_info == nullptr || set_device(index) != 0 ||
      mem_get_info(&free, &total) != 0) {
    return -1;
  }
  return static_cast<std::int64_t>(free);
}

void TorchEngine::set_threads(int n) const {
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

int TorchEngine::threads() const noexcept { return at::get_num_threads(); }

std::unique_ptr<LoadedModel> TorchEngine::load(ModelSpec spec, std::string path, bool has_spec,
                                               RunOptions opts) const {
  auto impl = std::make_unique<TorchModel>();
  impl->path = std::move(path);
  impl->spec = std::move(spec);
  impl->has_spec = has_spec;
  if (!opts.device.is_cuda() && opts.precision == Precision::kFp16) {
    MLL_THROW(UsageError, impl->spec.id, ": float16 runs on CUDA only (use fp32 or bf16)");
  }
  if (opts.device.is_cuda() && (!cuda_available() || opts.device.index >= cuda_device_count())) {
    MLL_THROW(UsageError, impl->spec.id, ": device ", opts.device.str(), " is not available");
  }
  impl->opts = opts;
  const std::string& file = impl->path;
  fs::require_input_file(file, "model file");
  std::error_code ec;
  if (stdfs::file_size(file, ec) == 0) {
    MLL_THROW(DataError, file, ": model file is empty, not a TorchScript archive");
  }
  try {
    torch::NoGradGuard no_grad;
    impl->module = torch::jit::load(file, impl->torch_device());
    impl->module.eval();
    if (impl->reduced()) impl->module.to(impl->scalar_type());
  } catch (const std::exception& e) {
    MLL_THROW(DataError, file, ": not a loadable TorchScript archive (", detail::torch_message(e),
              ")");
  }
  for (const char* method : {"encode_image", "encode_text"}) {
    if (!impl->module.find_method(method)) {
      MLL_THROW(DataError, file, ": TorchScript module has no method '", method,
                "' (a model must define encode_image and encode_text)");
    }
  }
  for (const auto& p : impl->module.parameters(/*recurse=*/true)) impl->params += p.numel();
  if (impl->spec.embed_dim) impl->dim = *impl->spec.embed_dim;
  log::debug("loaded model '", impl->spec.id, "' from ", file, " on ", opts.device.str(), " (",
             to_string(impl->opts.precision), "): ", impl->params, " parameters");
  return impl;
}

}  // namespace mll::zoo::detail

extern "C" __attribute__((visibility("default"))) int mll_torch_engine_interface() {
  return kMllTorchEngineInterface;
}

extern "C" __attribute__((visibility("default"))) const mll::zoo::detail::Engine*
mll_torch_engine() {
  static const mll::zoo::detail::TorchEngine engine;
  return &engine;
}
