# Compile flags live on INTERFACE targets, never in the global CMAKE_CXX_FLAGS.
#   xasmap_warnings: the warning set, as errors when XASMAP_WERROR is ON.
#   xasmap_options:  sanitizers and other whole-build options every xasmap target links.

add_library(xasmap_warnings INTERFACE)
target_compile_options(xasmap_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
  -Wold-style-cast -Wcast-align -Woverloaded-virtual -Wimplicit-fallthrough)
if(XASMAP_WERROR)
  target_compile_options(xasmap_warnings INTERFACE -Werror)
endif()
# GCC 12 at -O3 reports impossible overlaps inside std::string's own copies (GCC bug 105329):
# a false positive in the standard library, not in our code, that would break Release builds.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
   AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(xasmap_warnings INTERFACE -Wno-restrict)
endif()

add_library(xasmap_options INTERFACE)
if(XASMAP_SANITIZE)
  target_compile_options(xasmap_options INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(xasmap_options INTERFACE -fsanitize=address,undefined)
endif()

# A network daemon is hardened as Debian's hardening=+all builds are: fortified libc calls,
# stack protector, position-independent executable, full RELRO (read-only relocations, bound at
# start). _FORTIFY_SOURCE needs optimisation and would shadow AddressSanitizer's own checks, so it
# is left out of sanitizer builds and builds without optimisation (tests/service/hardening_check.sh
# checks the installed binaries).
option(XASMAP_HARDEN "Hardening flags: _FORTIFY_SOURCE=2, stack protector, PIE, full RELRO" ON)
if(XASMAP_HARDEN)
  target_compile_options(xasmap_options INTERFACE -fstack-protector-strong -fPIE)
  target_link_options(xasmap_options INTERFACE -pie -Wl,-z,relro -Wl,-z,now)
  if(NOT XASMAP_SANITIZE)
    target_compile_options(xasmap_options INTERFACE
      $<$<NOT:$<CONFIG:Debug>>:-U_FORTIFY_SOURCE> $<$<NOT:$<CONFIG:Debug>>:-D_FORTIFY_SOURCE=2>)
  endif()
endif()

if(XASMAP_CLANG_TIDY)
  find_program(XASMAP_CLANG_TIDY_EXE NAMES clang-tidy clang-tidy-14 REQUIRED)
  set(CMAKE_CXX_CLANG_TIDY "${XASMAP_CLANG_TIDY_EXE}")
endif()

# xasmap_harden(TARGET) links the two interface targets into a first-party target.
function(xasmap_harden target)
  target_link_libraries(${target} PRIVATE xasmap_warnings xasmap_options)
endfunction()
