// Private to the zoo module: the part of the zoo that needs libtorch, behind an interface.
//
// libtorch drags ~300 shared libraries into a process (OpenCV, GDAL, NetCDF and a second, serial
// HDF5) and its start-up costs about half a second of CPU before main. Most mll commands never
// run a model (`graph show`, `inspect`, `store verify`, `plan`, `--help`), so libtorch lives in
// its own shared library, libmll_torch.so (torch_runner.cpp, torch_authored.cpp), which the
// zoo loads on first use: the first Model, a CUDA query or an authored model (set_threads() only
// records its count until then, so that labeling decodes while libtorch loads).
// Only the engine's implementation includes libtorch headers; this interface passes flat
// buffers and mll's own types, and errors cross it as mll exceptions (mll_core is one shared
// library for the whole process, so their type identity is shared).
//
// Where the engine is looked for, first hit wins: $MLL_TORCH_ENGINE (a path), beside the
// library or executable that holds this code (libmll_app.so's folder: build/src/app/ or
// <prefix>/lib/mll/), then the build tree's copy (for test executables). Not found or not
// loadable: InternalError naming every place tried (exit 70).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mll/core/matrix.hpp"
#include "mll/zoo/authored.hpp"
#include "mll/zoo/model_spec.hpp"
#include "mll/zoo/runner.hpp"

namespace mll::zoo::detail {

// One model loaded onto its device. The data members are what Model reports about it.
class LoadedModel {
 public:
  virtual ~LoadedModel() = default;
  // As Model::encode_images / encode_text (same checks, same errors).
  virtual Matrix encode_images(const float* chw, int batch, int h, int w) const = 0;
  virtual Matrix encode_images_consuming(float* chw, int batch, int h, int w) const = 0;
  virtual Matrix encode_text(const std::int64_t* ids, int batch, int len) const = 0;
  virtual std::int64_t parameter_count() const noexcept = 0;
  virtual std::int64_t embed_dim() const noexcept = 0;

  ModelSpec spec;
  bool has_spec = true;
  RunOptions opts;
  std::string path;
};

// The authored model geometry resolved by the light side (authored.cpp), for the engine to build.
struct AuthoredBuild {
  AuthoredModelParams params;  // every default filled in
  bool vit = false;
};

class Engine {
 public:
  virtual ~Engine() = default;
  virtual bool cuda_available() const noexcept = 0;
  virtual int cuda_device_count() const noexcept = 0;
  // Free bytes on CUDA device `index` (-1 when unknown). Creates the device's context.
  virtual std::int64_t cuda_free_memory(int index) const noexcept = 0;
  virtual void set_threads(int n) const = 0;
  virtual int threads() const noexcept = 0;
  // As Model's constructors: spec.model_path() onto opts.device.
  // `path` is spec.model_path(), resolved by the caller (the engine links no zoo code).
  virtual std::unique_ptr<LoadedModel> load(ModelSpec spec, std::string path, bool has_spec,
                                            RunOptions opts) const = 0;
  // Builds the authored module and saves it at `path` (atomically).
  virtual void save_authored(const AuthoredBuild& build, const std::string& path) const = 0;
  virtual void write_scripted_module(const std::string& path, const std::string& source,
                                     const std::vector<NamedTensor>& tensors) const = 0;
};

// The engine, loaded on the first call (thread-safe). Throws InternalError when it cannot be.
const Engine& engine();

}  // namespace mll::zoo::detail

// The engine library's exported symbols: the engine, and the version of this interface it was
// built with (a library of another version is not used: its vtable would not match).
inline constexpr int kMllTorchEngineInterface = 3;
extern "C" const mll::zoo::detail::Engine* mll_torch_engine();
extern "C" int mll_torch_engine_interface();
