# Third-party packages, all from Debian (tools/setup-deps.sh installs them). Each is linked
# PRIVATE into the one module that owns it (design.md, "Components").

find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)                     # core: SHA-256 content hashes
# core: XXH3 checksums of cached crops (libxxhash-dev has a pkg-config file, no CMake package)
find_path(XXHASH_INCLUDE_DIR xxhash.h REQUIRED)
find_library(XXHASH_LIBRARY xxhash REQUIRED)
add_library(mll_xxhash INTERFACE)
target_include_directories(mll_xxhash SYSTEM INTERFACE ${XXHASH_INCLUDE_DIR})
target_link_libraries(mll_xxhash INTERFACE ${XXHASH_LIBRARY})
set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)                        # core: matrix products (cblas)
find_package(nlohmann_json 3.10 REQUIRED)          # core/zoo/...: JSON sidecars and reports
find_package(spdlog REQUIRED)                      # core: logging
find_package(Boost 1.74 REQUIRED COMPONENTS program_options)  # cli

# Parallel HDF5 so that the store can later be opened collectively; the thin RAII layer in
# src/h5 is the only code that includes hdf5.h.
set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT HDF5_IS_PARALLEL)
  message(STATUS "mll: HDF5 found is not parallel; the store uses it from one writer only")
endif()

# MPI: the distributed module's MPI backend (MLL_WITH_MPI), and the headers of a parallel HDF5,
# which include mpi.h. A build without MPI on a machine with a serial HDF5 needs none.
if(MLL_WITH_MPI)
  find_package(MPI REQUIRED COMPONENTS C CXX)
elseif(HDF5_IS_PARALLEL)
  find_package(MPI REQUIRED COMPONENTS C)
endif()

if(MLL_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# NCCL (MLL_WITH_NCCL, off by default): the CUDA runtime and NCCL from a CUDA toolkit, e.g.
# -DCUDAToolkit_ROOT=/usr/local/cuda; NCCL is looked for beside it unless NCCL_ROOT says where.
if(MLL_WITH_NCCL)
  find_package(CUDAToolkit REQUIRED)
  find_path(NCCL_INCLUDE_DIR nccl.h
            HINTS ${NCCL_ROOT} ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}
            PATH_SUFFIXES include)
  find_library(NCCL_LIBRARY nccl
               HINTS ${NCCL_ROOT} ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}
               PATH_SUFFIXES lib lib64)
  if(NOT NCCL_INCLUDE_DIR OR NOT NCCL_LIBRARY)
    message(FATAL_ERROR "MLL_WITH_NCCL=ON but nccl.h / libnccl were not found; set NCCL_ROOT")
  endif()
  add_library(NCCL::nccl UNKNOWN IMPORTED)
  set_target_properties(NCCL::nccl PROPERTIES IMPORTED_LOCATION ${NCCL_LIBRARY}
                                              INTERFACE_INCLUDE_DIRECTORIES ${NCCL_INCLUDE_DIR})
  message(STATUS "mll: NCCL ${NCCL_LIBRARY}")
endif()
