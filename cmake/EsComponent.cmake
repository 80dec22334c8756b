# One folder = one component = one target (docs/architecture.md).
#
#   es_component(<name> SOURCES <file>... [DEPENDS <component>...]
#                [PUBLIC_LIBS <target>...] [PRIVATE_LIBS <target>...])
#
# makes es_<name>, an OBJECT library compiled from the folder's src/, whose
# public headers are the folder's include/ and whose private headers are its
# src/. Headers a component offers to the components above it (never to
# tools) sit at the folder's top and are included by path from the source
# root: #include "base/error.h". DEPENDS names the components below it; the
# include check (tools/check-layers) enforces that nothing points up.
#
# It also makes es_<name>_stack, a static library of the component and every
# component below it, and nothing above: the component's own tests link that,
# so a dependency that points up fails to link.
function(es_component name)
  cmake_parse_arguments(C "" "" "SOURCES;DEPENDS;PUBLIC_LIBS;PRIVATE_LIBS" ${ARGN})
  set(target es_${name})
  add_library(${target} OBJECT ${C_SOURCES})
  target_include_directories(${target}
    PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
           $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/generated> $<INSTALL_INTERFACE:include>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR})
  # Only what the public headers mark ES_API leaves the shared library.
  set_target_properties(${target} PROPERTIES C_VISIBILITY_PRESET hidden)
  set(stack ${name})
  foreach(dep IN LISTS C_DEPENDS)
    target_link_libraries(${target} PUBLIC es_${dep})
    get_property(below GLOBAL PROPERTY ES_STACK_${dep})
    list(APPEND stack ${below})
  endforeach()
  list(REMOVE_DUPLICATES stack)
  target_link_libraries(${target} PUBLIC ${C_PUBLIC_LIBS} PRIVATE ${C_PRIVATE_LIBS})
  es_warnings(${target})
  set_property(GLOBAL PROPERTY ES_STACK_${name} ${stack})
  set_property(GLOBAL PROPERTY ES_LIBS_${name} ${C_PUBLIC_LIBS} ${C_PRIVATE_LIBS})
  set_property(GLOBAL PROPERTY ES_DIR_${name} ${CMAKE_CURRENT_SOURCE_DIR})

  # The stack library, for the component's tests.
  add_library(${target}_stack STATIC)
  foreach(c IN LISTS stack)
    target_sources(${target}_stack PRIVATE $<TARGET_OBJECTS:es_${c}>)
    get_property(libs GLOBAL PROPERTY ES_LIBS_${c})
    get_property(dir GLOBAL PROPERTY ES_DIR_${c})
    target_link_libraries(${target}_stack PUBLIC ${libs})
    target_include_directories(${target}_stack PUBLIC ${dir}/include ${PROJECT_BINARY_DIR}/generated)
  endforeach()
endfunction()

# es_component_objects(<out-var> <component>...): the object files of these
# components and everything below them, for the installed libraries.
function(es_component_objects out)
  set(all)
  foreach(name IN LISTS ARGN)
    get_property(stack GLOBAL PROPERTY ES_STACK_${name})
    list(APPEND all ${stack})
  endforeach()
  list(REMOVE_DUPLICATES all)
  set(objs)
  foreach(c IN LISTS all)
    list(APPEND objs $<TARGET_OBJECTS:es_${c}>)
  endforeach()
  set(${out} ${objs} PARENT_SCOPE)
endfunction()

# es_unit_test(<name> COMPONENT <component> <source>...): a cmocka test of one
# component, registered with ctest (label "unit"), linked with that
# component's stack only and allowed its private headers. Tests that read
# ../shared find it through ES_SHARED_DIR and skip when it is absent.
function(es_unit_test name)
  cmake_parse_arguments(T "" "COMPONENT" "" ${ARGN})
  add_executable(${name} ${T_UNPARSED_ARGUMENTS})
  target_link_libraries(${name} PRIVATE es_${T_COMPONENT}_stack PkgConfig::CMOCKA)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/${T_COMPONENT}/src
                                             ${PROJECT_SOURCE_DIR})
  es_warnings(${name})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit ENVIRONMENT "ES_SHARED_DIR=${ES_SHARED_DIR}")
endfunction()
