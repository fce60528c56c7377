// The light side of the model runner: devices, Model's bookkeeping, and the engine library that
// does the work (engine.hpp says why it is apart and where it is looked for).
#include "mll/zoo/runner.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <regex>

#include "engine.hpp"
#include "mll/core/error.hpp"
#include "mll/core/hash.hpp"

namespace mll::zoo {
namespace detail {
namespace {

// The folder of the shared object (or executable) this code was linked into.
std::string own_folder() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&own_folder), &info) == 0 || info.dli_fname == nullptr)
    return ".";
  return std::filesystem::path(info.dli_fname).parent_path().string();
}

const Engine* load_engine() {
  std::vector<std::string> places;
  if (const char* path = std::getenv("MLL_TORCH_ENGINE"); path != nullptr && *path != '\0') {
    places.emplace_back(path);
  }
  const std::string here = own_folder();
  places.push_back(here + "/libmll_torch.so");
  places.push_back(here + "/../lib/mll/libmll_torch.so");
  places.emplace_back(MLL_TORCH_ENGINE_BUILD_PATH);
  std::string tried;
  for (const auto& place : places) {
    if (!std::filesystem::exists(place)) {
      tried += (tried.empty() ? "" : "; ") + place + ": not found";
      continue;
    }
    void* library = ::dlopen(place.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      tried += (tried.empty() ? "" : "; ") + std::string(::dlerror());
      continue;
    }
    using Entry = const Engine* (*)();
    using Interface = int (*)();
    const auto entry = reinterpret_cast<Entry>(::dlsym(library, "mll_torch_engine"));
    const auto interface =
        reinterpret_cast<Interface>(::dlsym(library, "mll_torch_engine_interface"));
    if (entry == nullptr || interface == nullptr) {
      tried += (tried.empty() ? "" : "; ") + place + ": not an mll model engine";
      ::dlclose(library);
      continue;
    }
    if (interface() != kMllTorchEngineInterface) {
      tried += cat(tried.empty() ? "" : "; ", place, ": engine interface ", interface(),
                   ", this mll needs ", kMllTorchEngineInterface);
      ::dlclose(library);
      continue;
    }
    return entry();  // the library stays loaded for the life of the process
  }
  MLL_THROW(InternalError, "cannot load mll's model engine (libmll_torch.so): ", tried,
            " (reinstall mll, or set MLL_TORCH_ENGINE to the library's path)");
}

}  // namespace

// The thread count asked for before the engine was loaded (0: none), applied when it loads:
// set_threads() must not load libtorch, so that labeling can start decoding while it loads.
std::mutex threads_mutex;
int requested_threads = 0;       // guarded by threads_mutex
const Engine* loaded = nullptr;  // guarded by threads_mutex; set once the engine is loaded

const Engine& engine() {
  static const Engine* const once = [] {  // thread-safe; a failure retries
    const Engine* e = load_engine();
    std::lock_guard lock(threads_mutex);
    if (requested_threads > 0) e->set_threads(requested_threads);
    loaded = e;
    return e;
  }();
  return *once;
}

}  // namespace detail

bool cuda_available() noexcept {
  try {
    return detail::engine().cuda_available();
  } catch (...) {
    return false;
  }
}

int cuda_device_count() noexcept {
  try {
    return detail::engine().cuda_device_count();
  } catch (...) {
    return 0;
  }
}

std::int64_t cuda_free_memory(int index) noexcept {
  try {
    return detail::engine().cuda_free_memory(index);
  } catch (...) {
    return -1;
  }
}

namespace {

// Whether a GPU driver's device files exist. Without them no libtorch can see a GPU, so "auto"
// is the CPU without loading the engine (labeling then starts decoding while it loads). NVIDIA's
// (CUDA), AMD's /dev/kfd (ROCm builds also answer to "cuda"), WSL's /dev/dxg.
bool gpu_driver_present() {
  for (const char* path :
       {"/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/kfd", "/dev/dxg"}) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) return true;
  }
  return false;
}

}  // namespace

// "cpu" needs no engine: commands that only parse options stay light.
Device parse_device(const std::string& text) {
  Device d;
  if (text == "cpu") return d;
  // Anything but the CPU asks the engine: a missing engine is its own error (exit 70), not
  // "no CUDA".
  if (text == "auto") {
    if (gpu_driver_present() && detail::engine().cuda_available()) d.kind = Device::Kind::kCuda;
    return d;
  }
  const detail::Engine& engine = detail::engine();
  static const std::regex cuda_re("cuda(?::([0-9]{1,4}))?");
  std::smatch m;
  if (!std::regex_match(text, m, cuda_re)) {
    MLL_THROW(UsageError, "unknown device '", text, "' (expected auto, cpu, cuda or cuda:N)");
  }
  d.kind = Device::Kind::kCuda;
  d.index = m[1].matched ? std::stoi(m[1].str()) : 0;
  if (!engine.cuda_available()) {
    MLL_THROW(UsageError, "device '", text,
              "' requested but CUDA is not available (this libtorch has no CUDA or no GPU is "
              "visible); use --device cpu or build against a CUDA libtorch with -DTorch_DIR");
  }
  if (d.index >= engine.cuda_device_count()) {
    MLL_THROW(UsageError, "device '", text, "' requested but only ", engine.cuda_device_count(),
              " CUDA device(s) are visible");
  }
  return d;
}

Precision parse_precision(const std::string& text, const Device& device) {
  if (text == "auto") return device.is_cuda() ? Precision::kFp16 : Precision::kFp32;
  if (text == "fp32") return Precision::kFp32;
  if (text == "bf16") return Precision::kBf16;
  if (text == "fp16") {
    if (!device.is_cuda()) {
      MLL_THROW(UsageError, "--precision fp16 needs a CUDA device (got ", device.str(),
                "); on the CPU use fp32 or bf16");
    }
    return Precision::kFp16;
  }
  MLL_THROW(UsageError, "unknown precision '", text, "' (expected auto, fp32, fp16 or bf16)");
}

void set_threads(int n) {
  if (n < 1) MLL_THROW(UsageError, "thread count must be at least 1, got ", n);
  std::lock_guard lock(detail::threads_mutex);
  detail::requested_threads = n;
  if (detail::loaded != nullptr) detail::loaded->set_threads(n);
}

int threads() noexcept {
  std::lock_guard lock(detail::threads_mutex);
  if (detail::loaded != nullptr) return detail::loaded->threads();
  return detail::requested_threads > 0 ? detail::requested_threads : 1;
}

struct Model::Impl {
  std::unique_ptr<detail::LoadedModel> loaded;
  mutable std::once_flag sha_once;
  mutable std::string sha;
};

std::unique_ptr<Model::Impl> Model::load(ModelSpec spec, bool has_spec, RunOptions opts) {
  auto impl = std::make_unique<Impl>();
  std::string path = spec.model_path();
  impl->loaded = detail::engine().load(std::move(spec), std::move(path), has_spec, opts);
  return impl;
}

Model::Model(const ModelSpec& spec, const RunOptions& opts) : impl_(load(spec, true, opts)) {}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Model Model::from_file(const std::string& path, const RunOptions& opts) {
  ModelSpec spec;
  spec.id = std::filesystem::path(path).filename().string();
  spec.model_file = path;
  return Model(load(spec, false, opts));
}

Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

Matrix Model::encode_images(const float* chw, int batch, int h, int w) const {
  return impl_->loaded->encode_images(chw, batch, h, w);
}

Matrix Model::encode_images_consuming(float* chw, int batch, int h, int w) const {
  return impl_->loaded->encode_images_consuming(chw, batch, h, w);
}

Matrix Model::encode_text(const std::int64_t* ids, int batch, int len) const {
  return impl_->loaded->encode_text(ids, batch, len);
}

const std::string& Model::id() const noexcept { return impl_->loaded->spec.id; }
const std::string& Model::path() const noexcept { return impl_->loaded->path; }
const ModelSpec& Model::spec() const noexcept { return impl_->loaded->spec; }
Device Model::device() const noexcept { return impl_->loaded->opts.device; }
Precision Model::precision() const noexcept { return impl_->loaded->opts.precision; }
std::int64_t Model::parameter_count() const noexcept { return impl_->loaded->parameter_count(); }
std::int64_t Model::embed_dim() const noexcept { return impl_->loaded->embed_dim(); }

const std::string& Model::file_sha256() const {
  std::call_once(impl_->sha_once, [this] { impl_->sha = sha256_file(impl_->loaded->path); });
  return impl_->sha;
}

}  // namespace mll::zoo
