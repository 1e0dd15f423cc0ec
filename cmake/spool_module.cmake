# spool_add_module(name SOURCES ... DEPS ...): one static library per src/<module>,
# named spool_<name>, with the project's warnings and the public include/ directory.
function(spool_add_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
  add_library(spool_${name} STATIC ${M_SOURCES})
  target_include_directories(spool_${name} PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(spool_${name} PUBLIC ${M_DEPS} PRIVATE spool_options)
endfunction()
