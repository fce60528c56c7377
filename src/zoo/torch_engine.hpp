// Private to libmll_torch.so: the Engine of engine.hpp, implemented with libtorch
// (torch_runner.cpp: models and threads; torch_authored.cpp: authored and scripted modules).
#pragma once

#include "engine.hpp"

namespace mll::zoo::detail {

class TorchEngine final : public Engine {
 public:
  bool cuda_available() const noexcept override;
  int cuda_device_count() const noexcept override;
  std::int64_t cuda_free_memory(int index) const noexcept override;
  void set_threads(int n) const override;
  int threads() const noexcept override;
  std::unique_ptr<LoadedModel> load(ModelSpec spec, std::string path, bool has_spec,
                                    RunOptions opts) const override;
  void save_authored(const AuthoredBuild& build, const std::string& path) const override;
  void write_scripted_module(const std::string& path, const std::string& source,
                             const std::vector<NamedTensor>& tensors) const override;
};

}  // namespace mll::zoo::detail
