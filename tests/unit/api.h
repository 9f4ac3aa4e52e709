/* Unit tests of the public malloc API of cmalloc (glibc 2.36 semantics):
 * what the test files of every family (api_*.c) share.
 *
 * Built twice by tests/CMakeLists.txt, from the same sources:
 *   unit_api            linked against the shared cmalloc library, so every
 *                       malloc call of this program (and of libc, libcheck)
 *                       is served by cmalloc;
 *   unit_glibc_reference the same sources with -DCMT_REFERENCE_GLIBC, linked
 *                       against nothing but glibc.  It proves that the
 *                       expectations of the tests really are glibc's
 *                       behaviour.
 *                       cmalloc-only checks (cmalloc_owns, the version, the
 *                       cmalloc part of malloc_stats, the aliases glibc does
 *                       not export) are left out there, and the few places
 *                       where the cmalloc specification deliberately differs
 *                       from what glibc 2.36 really does are marked
 *                       "glibc differs".
 *
 * The families, one file each, in the order the suite runs them:
 *   api_malloc.c        malloc and free, calloc and reallocarray, the size
 *                       ladder, impossible sizes (test cases malloc, calloc,
 *                       impossible)
 *   api_aligned.c       posix_memalign, memalign, aligned_alloc, valloc,
 *                       pvalloc (aligned)
 *   api_realloc.c       realloc (realloc)
 *   api_introspection.c mallopt, malloc_trim, mallinfo, mallinfo2,
 *                       malloc_stats, malloc_info (introspection)
 *   api_aliases.c       the __libc_* aliases, __posix_memalign, cfree,
 *                       free_sized, free_aligned_sized (aliases)
 *   api_cmalloc.c       cmalloc only: cmalloc_owns, the version, realloc
 *                       within a run (cmalloc)
 *   api_remote_free.c   cmalloc only: blocks freed by another thread
 *                       (remote-free)
 * Each adds its test cases to the suite in its api_*_tests() function;
 * api_main.c builds the suite from them and runs it.
 */
#ifndef CMT_UNIT_API_H
#define CMT_UNIT_API_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"
#include "validate_hook.h"

#ifndef CMT_REFERENCE_GLIBC
#include "cmalloc.h"
#define CMT_CMALLOC 1
#else
#define CMT_CMALLOC 0
#endif

/* Aliases that glibc 2.36's headers do not declare (or not any more). */
extern void *__libc_malloc(size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_calloc(size_t nmemb, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
#if CMT_CMALLOC
extern int __posix_memalign(void **memptr, size_t alignment, size_t size);
extern void cfree(void *ptr);
extern void free_sized(void *ptr, size_t size);
extern void free_aligned_sized(void *ptr, size_t alignment, size_t size);
#endif

static TU_UNUSED size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static TU_UNUSED size_t round_up(size_t n, size_t a)
{
    return (n + a - 1) / a * a;
}

static TU_UNUSED size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* A broad list of request sizes: every interesting power of two -1/0/+1,
 * from 0 up into the mmap range. */
static TU_UNUSED const size_t common_sizes[] = {
    0, 1, 2, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32, 33, 40, 47, 48, 49, 63,
    64, 65, 80, 96, 112, 127, 128, 129, 160, 192, 224, 255, 256, 257, 320,
    384, 448, 511, 512, 513, 640, 768, 896, 1000, 1023, 1024, 1025, 1500,
    2047, 2048, 2049, 3000, 4095, 4096, 4097, 6000, 8191, 8192, 8193, 12288,
    16383, 16384, 16385, 32767, 32768, 32769, 65535, 65536, 65537, 100000,
    131071, 131072, 131073, 262143, 262144, 262145, 524287, 524288, 524289,
    1048575, 1048576, 1048577, 1500000, 2097151, 2097152, 2097153, 4194305,
    8388608, 16777221,
};
#define N_COMMON (sizeof common_sizes / sizeof common_sizes[0])

/* Requests that can never be satisfied: above PTRDIFF_MAX, or on 64-bit
 * targets up to it, beyond x86-64's 47-bit user space. */
static TU_UNUSED const size_t impossible_sizes[] = {
    SIZE_MAX,
    SIZE_MAX - 1,
    SIZE_MAX - 15,
    SIZE_MAX - 4096,
    SIZE_MAX - 4096 * 2 + 1,
    SIZE_MAX - 1024 * 1024,
    (size_t)PTRDIFF_MAX + 1,
#if SIZE_MAX > UINT32_MAX
    /* 2 GiB fits a 32-bit process on a 64-bit kernel: glibc gives it. */
    (size_t)PTRDIFF_MAX,
    (size_t)PTRDIFF_MAX - 4096,
    (size_t)1 << 62,
    ((size_t)1 << 62) + 1,
    ((size_t)1 << 60) + 12345,
#endif
};
/* Half the bits of size_t: two factors of 1 << TU_HALF_BITS overflow it. */
#define TU_HALF_BITS (4 * sizeof(size_t))

#define N_IMPOSSIBLE (sizeof impossible_sizes / sizeof impossible_sizes[0])

#define ck_assert_aligned(p, a)                                                  \
    ck_assert_msg(tu_aligned((p), (a)), "%p is not %zu-byte aligned", (void *)(p), \
                  (size_t)(a))

#define ck_assert_zeroed(p, n)                                                   \
    do {                                                                         \
        size_t nz_ = tu_first_nonzero((p), (n));                                 \
        ck_assert_msg(nz_ == (size_t)-1,                                         \
                      "block %p (%zu bytes) not zero at offset %zu",            \
                      (void *)(p), (size_t)(n), nz_);                            \
    } while (0)

/* Checks common to every successful allocation of n bytes: non-NULL,
 * 16-byte aligned, usable size >= n, every usable byte writable. */
static TU_UNUSED void check_block(void *p, size_t n)
{
    size_t usable;
    ck_assert_msg(p != NULL, "allocation of %zu bytes failed", n);
    ck_assert_aligned(p, 16);
    usable = malloc_usable_size(p);
    ck_assert_msg(usable >= n, "usable size %zu < request %zu", usable, n);
    memset(p, 0x5A, usable);
#if CMT_CMALLOC
    ck_assert_msg(cmalloc_owns(p), "cmalloc_owns(%p) false for a live %zu-byte block",
                  p, n);
#endif
}

#if CMT_CMALLOC
/* Hardened mode and Valgrind hold freed blocks in a quarantine first. */
static TU_UNUSED int quarantine_on(void)
{
    const char *options = getenv("CMALLOC_OPTIONS"), *hardened = getenv("CMALLOC_HARDENED");
    return TU_UNDER_VALGRIND() || (options && strstr(options, "hardened=on")) ||
           (hardened && strcmp(hardened, "0") != 0 && strcmp(hardened, "off") != 0);
}
#endif

/* A test case of the suite, with the suite's timeout (api_main.c). */
TCase *api_tcase(Suite *s, const char *name);

/* Each family adds its test cases to the suite. */
void api_malloc_tests(Suite *s);
void api_aligned_tests(Suite *s);
void api_realloc_tests(Suite *s);
void api_introspection_tests(Suite *s);
void api_aliases_tests(Suite *s);
#if CMT_CMALLOC
void api_cmalloc_tests(Suite *s);
void api_remote_free_tests(Suite *s);
#endif

/* Whether Check runs every test in this one process (CK_FORK=no, as
 * under memcheck.sh), where a test that must abort would end the run. */
static TU_UNUSED int check_runs_in_one_process(void)
{
    const char *mode = getenv("CK_FORK");
    return mode && strcmp(mode, "no") == 0;
}

#endif /* CMT_UNIT_API_H */
