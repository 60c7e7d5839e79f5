#!/bin/sh
# Checks ELF executables for the hardening a network daemon is built with (cmake/XasmapOptions.cmake):
# position-independent (PIE), full RELRO (a GNU_RELRO segment and immediate binding), a stack
# protector (__stack_chk_fail is imported) and fortified libc calls (some __*_chk is imported).
# Usage: hardening_check.sh EXECUTABLE...; prints one line per check and exits 1 if any fails.
set -u
status=0
for exe in "$@"; do
  check() {
    if [ "$2" -eq 0 ]; then echo "$exe: $1: yes"; else echo "$exe: $1: NO"; status=1; fi
  }
  readelf -h "$exe" | grep -Eq 'Type:[[:space:]]+DYN'; check "PIE" $?
  readelf -lW "$exe" | grep -q 'GNU_RELRO'; check "RELRO" $?
  readelf -dW "$exe" | grep -Eq '\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW'; check "BIND_NOW (full RELRO)" $?
  readelf --dyn-syms -W "$exe" | grep -q '__stack_chk_fail'; check "stack protector" $?
  readelf --dyn-syms -W "$exe" | grep -Eq ' __[a-z0-9_]+_chk(@|$)'; check "_FORTIFY_SOURCE" $?
done
exit $status
