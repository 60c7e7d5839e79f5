# Installs the build tree into a scratch prefix and checks that the installed daemon finds its
# config and data there without being told, and (given -DHARDENING_CHECK=hardening_check.sh) that
# the installed binaries are hardened. Run as: cmake -DBUILD_DIR=... -DPREFIX=... -P this.
file(REMOVE_RECURSE "${PREFIX}")
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}"
  RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()
foreach(f bin/xasmapd bin/xasmap bin/xasmap_client.py etc/xasmap/xasmapd.yaml
          share/xasmap/atomic/slater_3d_L23.csv lib/systemd/system/xasmapd.service)
  if(NOT EXISTS "${PREFIX}/${f}")
    message(FATAL_ERROR "not installed: ${PREFIX}/${f}")
  endif()
endforeach()
# The installed unit starts the installed daemon on the installed config.
file(READ "${PREFIX}/lib/systemd/system/xasmapd.service" unit)
if(NOT unit MATCHES "ExecStart=${PREFIX}/bin/xasmapd --config ${PREFIX}/etc/xasmap/xasmapd.yaml\n"
   OR unit MATCHES "/usr/local/")
  message(FATAL_ERROR "the installed unit does not name the prefix's paths:\n${unit}")
endif()
# The manual pages hold every option --help lists (xasmapd) and every command with every option of
# its own --help (xasmap), and groff formats them without a warning (but for a long word such as a
# list of library labels that cannot be broken to the line width).
macro(check_man page help_text)
  string(REGEX MATCHALL "--[a-z][a-z0-9-]*" options "${help_text}")
  list(REMOVE_DUPLICATES options)
  foreach(option ${options})
    string(REPLACE "-" "\\-" roff "${option}")
    string(FIND "${man}" "\\fB${roff}\\fR" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "${page} lacks ${option}, which --help lists")
    endif()
  endforeach()
endmacro()
foreach(program xasmapd xasmap)
  set(page "${PREFIX}/share/man/man1/${program}.1")
  if(NOT EXISTS "${page}")
    message(FATAL_ERROR "not installed: ${page}")
  endif()
  execute_process(COMMAND groff -man -Tutf8 -ww -Wbreak -z "${page}" RESULT_VARIABLE rc ERROR_VARIABLE warnings)
  if(NOT rc EQUAL 0 OR NOT warnings STREQUAL "")
    message(FATAL_ERROR "groff warns about ${page} (${rc}): ${warnings}")
  endif()
endforeach()
file(READ "${PREFIX}/share/man/man1/xasmapd.1" man)
execute_process(COMMAND "${PREFIX}/bin/xasmapd" --help OUTPUT_VARIABLE help)
check_man(xasmapd.1 "${help}")
file(READ "${PREFIX}/share/man/man1/xasmap.1" man)
execute_process(COMMAND "${PREFIX}/bin/xasmap" --help OUTPUT_VARIABLE help)
string(REGEX MATCHALL "\n  [a-z-]+ " commands "${help}")
list(LENGTH commands count)
if(count LESS 10)
  message(FATAL_ERROR "xasmap --help lists ${count} commands: ${help}")
endif()
foreach(line ${commands})
  string(STRIP "${line}" command)
  string(REPLACE "-" "\\-" roff "${command}")
  string(FIND "${man}" ".SS ${roff}\n" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "xasmap.1 lacks the command ${command}")
  endif()
  execute_process(COMMAND "${PREFIX}/bin/xasmap" ${command} --help OUTPUT_VARIABLE help)
  check_man("xasmap.1 (${command})" "${help}")
endforeach()
# The installed Python client runs (its --help needs only python3-zmq and python3-msgpack).
execute_process(COMMAND "${PREFIX}/bin/xasmap_client.py" --help
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "subscribe")
  message(FATAL_ERROR "installed xasmap_client.py --help failed (${rc}): ${out}${err}")
endif()
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
# The installed binaries carry the hardening flags (when the build has them: XASMAP_HARDEN).
if(HARDENING_CHECK)
  execute_process(COMMAND sh "${HARDENING_CHECK}" "${PREFIX}/bin/xasmapd" "${PREFIX}/bin/xasmap"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message(STATUS "${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "installed binaries lack hardening (${rc}):\n${out}${err}")
  endif()
endif()
file(REMOVE_RECURSE "${PREFIX}")
message(STATUS "install tree at ${PREFIX} is self-contained")
