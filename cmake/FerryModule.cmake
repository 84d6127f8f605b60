# ferry_module(NAME DEPS ...): a static library from every .cpp in src/NAME (and its
# sub-folders), so a new file in a module needs no edit here.
function(ferry_module name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  # common and core are declared from src/CMakeLists.txt: glob only their own folder there,
  # or every module's sources would also land in ferry_common (duplicate symbols).
  set(dir ${CMAKE_CURRENT_SOURCE_DIR})
  get_filename_component(leaf ${dir} NAME)
  if(NOT leaf STREQUAL name AND IS_DIRECTORY ${dir}/${name})
    set(dir ${dir}/${name})
  endif()
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${dir}/*.cpp)
  list(FILTER srcs EXCLUDE REGEX ".*/main\\.cpp$")
  add_library(ferry_${name} STATIC ${srcs})
  target_include_directories(ferry_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(ferry_${name} PUBLIC ${ARG_DEPS})
endfunction()

# ferry_tests(NAME DEPS ...): one gtest binary from every *_test.cpp in tests/NAME.
function(ferry_tests name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*_test.cpp)
  if(NOT srcs)
    return()
  endif()
  add_executable(${name}_tests ${srcs})
  target_include_directories(${name}_tests PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${name}_tests PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  # No build or source path is compiled in (tests/test_paths.h finds them at run time):
  # the objects are then alike in every checkout and ccache reuses them across clones.
  if(FERRY_CTEST_PER_SUITE)
    # One ctest test per suite (CI): each test process costs ~0.2-0.3 s to start under the
    # sanitizers, and the suites run in parallel all the same.
    set(TARGET ${name}_tests)
    set(LABEL ${name})
    set(WORKDIR ${CMAKE_CURRENT_BINARY_DIR})
    configure_file(${PROJECT_SOURCE_DIR}/cmake/gtest_suites.cmake.in
                   ${CMAKE_CURRENT_BINARY_DIR}/${name}_suites.cmake.in @ONLY)
    file(GENERATE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/${name}_suites.cmake
         INPUT ${CMAKE_CURRENT_BINARY_DIR}/${name}_suites.cmake.in)
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES
                 ${CMAKE_CURRENT_BINARY_DIR}/${name}_suites.cmake)
  else()
    gtest_discover_tests(${name}_tests DISCOVERY_MODE PRE_TEST
      PROPERTIES LABELS ${name} ENVIRONMENT "FERRY_BIN=$<TARGET_FILE:ferry>")
  endif()
endfunction()
