/* An LD_PRELOAD shim that counts heap allocations (malloc, calloc, realloc, memalign and the C++
 * allocation functions, which call malloc) made by a process, and writes the total at exit to the
 * file named by $XASMAP_MALLOC_COUNT_FILE. bench/alloc_per_message.sh runs xasmapd under it with two
 * message counts; the difference per message is the steady-state allocation count of the hot
 * path. glibc only (it forwards to glibc's __libc_* entry points). */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);

static atomic_long count;

void* malloc(size_t n) {
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t size) {
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return __libc_calloc(n, size);
}
void* realloc(void* p, size_t n) {
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return __libc_realloc(p, n);
}
void* memalign(size_t a, size_t n) {
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return __libc_memalign(a, n);
}
int posix_memalign(void** out, size_t a, size_t n) {
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  *out = __libc_memalign(a, n);
  return *out ? 0 : 12; /* ENOMEM */
}
void* aligned_alloc(size_t a, size_t n) {
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return __libc_memalign(a, n);
}

__attribute__((destructor)) static void report(void) {
  const char* file = getenv("XASMAP_MALLOC_COUNT_FILE");
  if (!file) return;
  FILE* f = fopen(file, "w");
  if (!f) return;
  fprintf(f, "%ld\n", atomic_load(&count));
  fclose(f);
}
