// The NCCL backend of Reducer (built with MLL_WITH_NCCL). The communicator spans the ranks of
// MPI_COMM_WORLD, one GPU each; MPI broadcasts its unique id. Every CUDA and NCCL handle is owned
// by an RAII holder so that an exception part-way through leaks nothing.
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <cstddef>

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

class NcclReducer final : public Reducer {
 public:
  explicit NcclReducer(const zoo::Device& device) : device_(device.index) {
    check(cudaSetDevice(device_), "cudaSetDevice");
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    ncclUniqueId id{};
    // Rank 0's id reaches every rank even when rank 0 failed to make one (all-zero id), so that
    // every rank fails in ncclCommInitRank rather than waiting in a broadcast.
    if (rank == 0) {
      const ncclResult_t rc = ncclGetUniqueId(&id);
      MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
      check(rc, "ncclGetUniqueId");
    } else {
      MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD);
    }
    check(ncclCommInitRank(&comm_.comm, size, id, rank), "ncclCommInitRank");
    check(cudaStreamCreate(&stream_.stream), "cudaStreamCreate");
    rank_ = rank;
  }

  void max_to_root(std::vector<std::int32_t>& values) override {
    check(cudaSetDevice(device_), "cudaSetDevice");
    const std::size_t bytes = values.size() * sizeof(std::int32_t);
    buffer_.reserve(bytes);
    check(
        cudaMemcpyAsync(buffer_.data, values.data(), bytes, cudaMemcpyHostToDevice, stream_.stream),
        "copy to device");
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
  // Destroyed in reverse order: the buffer and stream before the communicator.
  Comm comm_;
  Stream stream_;
  DeviceBuffer buffer_;
};

}  // namespace

std::unique_ptr<Reducer> make_nccl_reducer(const zoo::Device& device) {
  return std::make_unique<NcclReducer>(device);
}

}  // namespace mll::dist
