// The NCCL backend of Reducer (built with MLL_WITH_NCCL). The NCCL communicator spans the ranks
// of the job's Comm, one GPU each; the Comm broadcasts its unique id. Every CUDA and NCCL handle is
// owned by an RAII holder so that an exception part-way through leaks nothing.
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstddef>
#include <string>

#include <cstring>

#include "mll/core/error.hpp"
#include "mll/distributed/collective.hpp"
#include "reduce.hpp"

namespace mll::distributed {
namespace {

void check(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess) MLL_THROW(InternalError, "CUDA ", what, ": ", cudaGetErrorString(rc));
}

void check(ncclResult_t rc, const char* what) {
  if (rc != ncclSuccess) MLL_THROW(InternalError, "NCCL ", what, ": ", ncclGetErrorString(rc));
}

struct NcclComm {
  ncclComm_t comm = nullptr;
  ~NcclComm() {
    if (comm != nullptr) ncclCommDestroy(comm);
  }
};

struct Stream {
  cudaStream_t stream = nullptr;
  ~Stream() {
    if (stream != nullptr) cudaStreamDestroy(stream);
  }
};

struct DeviceBuffer {
  void* data = nullptr;
  std::size_t bytes = 0;
  ~DeviceBuffer() {
    if (data != nullptr) cudaFree(data);
  }
  void reserve(std::size_t wanted) {
    if (wanted <= bytes) return;
    if (data != nullptr) cudaFree(data);
    data = nullptr;
    bytes = 0;
    check(cudaMalloc(&data, wanted), "cudaMalloc");
    bytes = wanted;
  }
};

// NCCL collectives wait for every rank, so each one is entered only after all ranks have agreed
// (collective.hpp) that their local steps succeeded; a failure then surfaces on every rank
// instead of leaving the others waiting.

class NcclReducer final : public Reducer {
 public:
  // Collective. On failure (on any rank) every rank returns with *error set and no
  // communicator.
  NcclReducer(Comm& comm, const zoo::Device& device, std::string* error)
      : comm_(comm), device_(device.index) {
    try {
      set_up();
      ready_ = true;
    } catch (const Error& e) {
      *error = e.what();
    }
  }

  bool ready() const noexcept { return ready_; }

  void max_to_root(std::vector<std::int32_t>& values) override {
    const std::size_t bytes = values.size() * sizeof(std::int32_t);
    Outcome outcome;
    outcome.run([&] {
      check(cudaSetDevice(device_), "cudaSetDevice");
      buffer_.reserve(bytes);
      check(cudaMemcpyAsync(buffer_.data, values.data(), bytes, cudaMemcpyHostToDevice,
                            stream_.stream),
            "copy to device");
      check(cudaStreamSynchronize(stream_.stream), "cudaStreamSynchronize");
    });
    agree(comm_, outcome, "copying the predictions to the GPU");
    check(ncclReduce(buffer_.data, buffer_.data, values.size(), ncclInt32, ncclMax, 0, nccl_.comm,
                     stream_.stream),
          "ncclReduce");
    if (comm_.rank() == 0) {
      check(cudaMemcpyAsync(values.data(), buffer_.data, bytes, cudaMemcpyDeviceToHost,
                            stream_.stream),
            "copy to host");
    }
    check(cudaStreamSynchronize(stream_.stream), "cudaStreamSynchronize");
  }

  const char* name() const noexcept override { return "nccl"; }

 private:
  void set_up() {
    Outcome outcome;
    outcome.run([&] { check(cudaSetDevice(device_), "cudaSetDevice"); });
    outcome.run([&] { check(cudaStreamCreate(&stream_.stream), "cudaStreamCreate"); });
    ncclUniqueId id{};
    if (comm_.rank() == 0) outcome.run([&] { check(ncclGetUniqueId(&id), "ncclGetUniqueId"); });
    agree(comm_, outcome, "setting up NCCL");
    std::vector<char> bytes(sizeof id);
    std::memcpy(bytes.data(), &id, sizeof id);
    comm_.broadcast(bytes, 0, "sharing the NCCL id");
    std::memcpy(&id, bytes.data(), sizeof id);
    outcome.run([&] {
      check(ncclCommInitRank(&nccl_.comm, comm_.size(), id, comm_.rank()), "ncclCommInitRank");
    });
    agree(comm_, outcome, "creating the NCCL communicator");
  }

  Comm& comm_;
  int device_ = 0;
  bool ready_ = false;
  // Destroyed in reverse order: the buffer and stream before the communicator.
  NcclComm nccl_;
  Stream stream_;
  DeviceBuffer buffer_;
};

}  // namespace

std::unique_ptr<Reducer> make_nccl_reducer(Comm& comm, const zoo::Device& device,
                                           std::string* error) {
  auto reducer = std::make_unique<NcclReducer>(comm, device, error);
  if (!reducer->ready()) return nullptr;
  return reducer;
}

}  // namespace mll::distributed
