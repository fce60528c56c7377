# Helpers shared by every module and test directory.

# Warnings every mll target compiles with.
function(mll_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                           -Wno-unused-parameter)
  if(MLL_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(MLL_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# mll_add_module(<name> [SHARED] SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# Defines the library mll_<name> (alias mll::<name>) with public headers under include/mll/<name>/.
# Static, except a module whose state must be one per process while a plugin
# (libmll_torch.so) shares it: SHARED.
function(mll_add_module name)
  cmake_parse_arguments(ARG "SHARED" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  if(ARG_SHARED)
    add_library(mll_${name} SHARED ${ARG_SOURCES})
    set_target_properties(mll_${name} PROPERTIES INSTALL_RPATH "$ORIGIN")
    install(TARGETS mll_${name} LIBRARY DESTINATION lib/mll)
  else()
    add_library(mll_${name} STATIC ${ARG_SOURCES})
  endif()
  add_library(mll::${name} ALIAS mll_${name})
  target_include_directories(mll_${name} PUBLIC ${PROJECT_SOURCE_DIR}/include
                                         PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(mll_${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  set_target_properties(mll_${name} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  mll_set_warnings(mll_${name})
endfunction()

# Environment every test needs: Open MPI refuses to run as root without these, and the CI machine
# has 2 cores, so oversubscription and the shared-memory transport are configured explicitly.
set(MLL_TEST_ENV
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader
    OMPI_MCA_plm=isolated OMPI_MCA_btl_vader_single_copy_mechanism=none
    OMPI_MCA_mpi_yield_when_idle=1
    MLL_SOURCE_DIR=${PROJECT_SOURCE_DIR} MLL_BINARY_DIR=${PROJECT_BINARY_DIR})

# mll_add_test(<name> SOURCES ... LIBS ... [LABELS ...])
# A GoogleTest executable; each test case becomes one ctest test.
function(mll_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES} ${PROJECT_SOURCE_DIR}/tests/common/test_main.cpp)
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gmock)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/common)
  target_compile_definitions(${name} PRIVATE MLL_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                                             MLL_TEST_BINARY_DIR="${PROJECT_BINARY_DIR}")
  mll_set_warnings(${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  # gtest_discover_tests cannot carry a list-valued ENVIRONMENT, so the environment these tests
  # need is set by their main() (tests/common/test_main.cpp).
  gtest_discover_tests(${name}
    PROPERTIES TIMEOUT ${ARG_TIMEOUT}
    DISCOVERY_TIMEOUT 60)
  # Labels are set by a file ctest reads after the discovered tests: gtest_discover_tests
  # flattens its PROPERTIES, so a list of labels would arrive as one label plus stray words
  # (ctest -L <second label> found nothing).
  set(labels_file "${CMAKE_CURRENT_BINARY_DIR}/${name}_labels.cmake")
  file(WRITE "${labels_file}"
       "if(${name}_TESTS)\n  set_tests_properties(\${${name}_TESTS} PROPERTIES LABELS "
       "\"${ARG_LABELS}\")\nendif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${labels_file}")
endfunction()

# mll_add_mpi_test(<name> SOURCES ... LIBS ... RANKS 1 2 3)
# A GoogleTest executable (with its own main, which starts MPI) run under mpiexec once per rank
# count; ctest names them <name>.np<N> and labels them "mpi".
function(mll_add_mpi_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;RANKS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gmock)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/tests/common)
  target_compile_definitions(${name} PRIVATE MLL_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                                             MLL_TEST_BINARY_DIR="${PROJECT_BINARY_DIR}")
  mll_set_warnings(${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  foreach(np IN LISTS ARG_RANKS)
    add_test(NAME ${name}.np${np}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${np} ${MPIEXEC_PREFLAGS}
                     $<TARGET_FILE:${name}> ${MPIEXEC_POSTFLAGS})
    set_tests_properties(${name}.np${np} PROPERTIES ENVIRONMENT "${MLL_TEST_ENV}"
                         TIMEOUT ${ARG_TIMEOUT} LABELS "mpi")
  endforeach()
endfunction()
