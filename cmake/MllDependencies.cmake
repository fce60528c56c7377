# Third-party packages, all from Debian (tools/setup-deps.sh installs them). Each is linked
# PRIVATE into the one module that owns it (design.md, "Components").

find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)                     # core: SHA-256 content hashes
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

find_package(MPI REQUIRED COMPONENTS C CXX)

if(MLL_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
