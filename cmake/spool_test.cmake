# spool_add_test(file.cpp DEPS ...): one GoogleTest binary per test file.
# Files ending in _redistest.cpp need a real redis-server (label `redis`),
# _e2etest.cpp drive the spool binary (label `e2e`), _browsertest.cpp drive it
# through a headless Chromium (label `browser`); the rest are `unit`.
# CLUSTER: the suite runs a second time against a 3-master Redis Cluster
# (${name}_cluster, SPOOL_TEST_REDIS=cluster; see testing/redis_server.hpp).
function(spool_add_test file)
  cmake_parse_arguments(T "CLUSTER" "TIMEOUT" "DEPS" ${ARGN})
  get_filename_component(name ${file} NAME_WE)
  if(NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${file})
    message(WARNING "spool_add_test: ${file} does not exist yet; skipped")
    return()
  endif()
  add_executable(${name} ${file})
  target_link_libraries(${name} PRIVATE ${T_DEPS} spool_testing GTest::gtest GTest::gtest_main spool_options)
  # A test's own code is compiled at -O1 (the libraries under test keep the build
  # type's level): test files are GoogleTest- and Asio-template heavy, and -O1 builds
  # them about a quarter faster than -O2 while running them just as well.
  if(CMAKE_BUILD_TYPE MATCHES "^(RelWithDebInfo|Release)$")
    target_compile_options(${name} PRIVATE -O1)
  endif()
  if(name MATCHES "_redistest$")
    set(label redis)
  elseif(name MATCHES "_e2etest$")
    set(label e2e)
  elseif(name MATCHES "_browsertest$")
    set(label browser)
  else()
    set(label unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS ${label} TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "SPOOL_BINARY=$<TARGET_FILE:spool>;SPOOL_SOURCE_DIR=${PROJECT_SOURCE_DIR};SPOOL_BUILD_DIR=${PROJECT_BINARY_DIR}")
  if(T_CLUSTER)
    add_test(NAME ${name}_cluster COMMAND ${name})
    set_tests_properties(${name}_cluster PROPERTIES LABELS "${label};cluster" TIMEOUT ${T_TIMEOUT}
      ENVIRONMENT "SPOOL_TEST_REDIS=cluster;SPOOL_BINARY=$<TARGET_FILE:spool>;SPOOL_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
  endif()
endfunction()
