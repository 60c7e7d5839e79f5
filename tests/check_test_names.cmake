# cmake -DEXECUTABLES="a;b" -P check_test_names.cmake
# Fails when a Catch2 executable lists a test case whose name ctest cannot hand back to it: ctest's
# discovery splits names at ';', and the halves then match no case.
if(NOT EXECUTABLES)
  message(FATAL_ERROR "check_test_names: no executables given")
endif()
set(total 0)
set(bad "")
foreach(exe IN LISTS EXECUTABLES)
  execute_process(COMMAND "${exe}" --list-test-names-only
    OUTPUT_VARIABLE listing RESULT_VARIABLE status)
  if(status LESS 0 OR listing STREQUAL "")
    message(FATAL_ERROR "check_test_names: ${exe} listed nothing (status ${status})")
  endif()
  # Each name is one line; a ';' inside one would split it into list items here too, so look for
  # it in the raw text line by line before any list handling.
  string(REGEX MATCHALL "[^\n]+" lines "${listing}")
  foreach(line IN LISTS lines)
    math(EXPR total "${total} + 1")
  endforeach()
  string(REGEX MATCHALL "[^\n]*;[^\n]*" with_semicolon "${listing}")
  if(with_semicolon)
    string(APPEND bad "\n  ${exe}: ${with_semicolon}")
  endif()
endforeach()
if(bad)
  message(FATAL_ERROR "check_test_names: test names with ';' (ctest splits them):${bad}")
endif()
message(STATUS "check_test_names: ${total} names, none with ';'")
