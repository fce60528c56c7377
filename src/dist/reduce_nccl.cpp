// The NCCL backend of Reducer (built with MLL_WITH_NCCL). The communicator spans the ranks of
// MPI_COMM_WORLD, one GPU each; MPI broadcasts its unique id. Every CUDA and NCCL handle is owned
// by an RAII holder so that an exception part-way through leaks nothing.
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <cstddef>
#include <string>

#include "mll/core/error.hpp"
#include "reduce.hpp"

namespace mll::dist {
namespace {

void check(cudaError_t rc, const char* what) {
  if (rc != cudaSuccess) MLL_THROW(InternalError, "CUDA ", what, ": ", cudaGetErrorString(rc));
}

void check(ncclResult_t rc, const char* what) {
  if (rc != ncclSuccess) MLL_THROW(InternalError, "NCCL ", what, ": ", ncclGetErrorString(rc));
}

struct Comm {
  ncclComm_t comm = nullptr;
  ~Comm() {
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

// Collective: true on every rank when `ok` is true on every rank. NCCL collectives wait for
// every rank, so each one is entered only after all ranks have agreed that their local steps
// succeeded; a failure then surfaces on every rank instead of leaving the others waiting.
bool all_ok(bool ok) {
  int flag = ok ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &flag, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return flag == 1;
}

class NcclReducer final : public Reducer {
 public:
  // Collective. On failure (on any rank) every rank returns with *error set and no
  // communicator.
  NcclReducer(const zoo::Device& device, std::string* error) : device_(device.index) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    std::string local;
    const auto attempt = [&](auto&& step) {
      try {
        step();
      } catch (const Error& e) {
        if (local.empty()) local = e.what();
      }
    };
    attempt([&] { check(cudaSetDevice(device_), "cudaSetDevice"); });
    attempt([&] { check(cudaStreamCreate(&stream_.stream), "cudaStreamCreate"); });
    ncclUniqueId id{};
    if (rank_ == 0) attempt([&] { check(ncclGetUniqueId(&id), "ncclGetUniqueId"); });
    if (!all_ok(local.empty())) {
      *error = local.empty() ? "set-up failed on another rank" : local;
      return;
    }
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    attempt([&] { check(ncclCommInitRank(&comm_.comm, size, id, rank_), "ncclCommInitRank"); });
    if (!all_ok(local.empty())) {
      *error = local.empty() ? "ncclCommInitRank failed on another rank" : local;
      return;
    }
    ready_ = true;
  }

  bool ready() const noexcept { return ready_; }

  void max_to_root(std::vector<std::int32_t>& values) override {
    const std::size_t bytes = values.size() * sizeof(std::int32_t);
    std::string local;
    try {
      check(cudaSetDevice(device_), "cudaSetDevice");
      buffer_.reserve(bytes);
      check(cudaMemcpyAsync(buffer_.data, values.data(), bytes, cudaMemcpyHostToDevice,
                            stream_.stream),
            "copy to device");
      check(cudaStreamSynchronize(stream_.stream), "cudaStreamSynchronize");
    } catch (const Error& e) {
      local = e.what();
    }
    if (!all_ok(local.empty())) {
      MLL_THROW(InternalError, local.empty() ? "NCCL reduction failed on another rank" : local);
    }
    check(ncclReduce(buffer_.data, buffer_.data, values.size(), ncclInt32, ncclMax, 0, comm_.comm,
                     stream_.stream),
          "ncclReduce");
    if (rank_ == 0) {
      check(cudaMemcpyAsync(values.data(), buffer_.data, bytes, cudaMemcpyDeviceToHost,
                            stream_.stream),
            "copy to host");
    }
    check(cudaStreamSynchronize(stream_.stream), "cudaStreamSynchronize");
  }

  const char* name() const noexcept override { return "nccl"; }

 private:
  int device_ = 0;
  int rank_ = 0;
  bool ready_ = false;
  // Destroyed in reverse order: the buffer and stream before the communicator.
  Comm comm_;
  Stream stream_;
  DeviceBuffer buffer_;
};

}  // namespace

std::unique_ptr<Reducer> make_nccl_reducer(const zoo::Device& device, std::string* error) {
  auto reducer = std::make_unique<NcclReducer>(device, error);
  if (!reducer->ready()) return nullptr;
  return reducer;
}

}  // namespace mll::dist
