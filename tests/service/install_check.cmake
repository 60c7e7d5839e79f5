# Installs the build tree into a scratch prefix and checks that the installed daemon finds its
# config and data there without being told. Run as: cmake -DBUILD_DIR=... -DPREFIX=... -P this.
file(REMOVE_RECURSE "${PREFIX}")
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}"
  RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()
foreach(f bin/xasmapd bin/xasmap etc/xasmap/xasmapd.yaml share/xasmap/atomic/slater_3d_L23.csv)
  if(NOT EXISTS "${PREFIX}/${f}")
    message(FATAL_ERROR "not installed: ${PREFIX}/${f}")
  endif()
endforeach()
# No --config: the installed daemon must pick up the installed config, and the tool the data.
execute_process(COMMAND "${PREFIX}/bin/xasmapd" --print-config
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "endpoint: tcp://127.0.0.1:5555")
  message(FATAL_ERROR "installed xasmapd --print-config failed (${rc}): ${out}${err}")
endif()
execute_process(COMMAND "${PREFIX}/bin/xasmap" version
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "data: ${PREFIX}/share/xasmap" OR
   NOT out MATCHES "default config: ${PREFIX}/etc/xasmap/xasmapd.yaml")
  message(FATAL_ERROR "installed xasmap does not find its own files (${rc}): ${out}${err}")
endif()
file(REMOVE_RECURSE "${PREFIX}")
message(STATUS "install tree at ${PREFIX} is self-contained")
