/* Small helpers shared by the cmalloc test programs.
 *
 * Everything here is static so that each test program is self-contained;
 * the helpers are deliberately simple and allocation-free. */
#ifndef CMALLOC_TESTUTIL_H
#define CMALLOC_TESTUTIL_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

#if defined(__GNUC__)
#define TU_UNUSED __attribute__((unused))
#else
#define TU_UNUSED
#endif

/* Whether the test runs under Valgrind, where cmalloc gives each block
 * extra room for its annotations (so sizes land in other classes) and
 * realloc always moves, as Valgrind's own does. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TU_UNDER_VALGRIND() (RUNNING_ON_VALGRIND != 0)
#endif
#endif
#ifndef TU_UNDER_VALGRIND
#define TU_UNDER_VALGRIND() 0
#endif

/* Hide a value from the optimiser so that it can neither fold the result of
 * an allocation nor warn about an (intentionally) impossible size. */
static TU_UNUSED size_t tu_opaque(size_t v)
{
    volatile size_t sink = v;
    return sink;
}

static TU_UNUSED void *tu_opaque_ptr(void *p)
{
    void *volatile sink = p;
    return sink;
}

/* Fatal check for the plain (non-Check) test programs. */
#define TU_CHECK(cond, ...)                                                   \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, \
                    #cond);                                                   \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
            fflush(stderr);                                                   \
            abort();                                                          \
        }                                                                     \
    } while (0)

/* xorshift64*: tiny deterministic PRNG, one state per thread. */
static TU_UNUSED uint64_t tu_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * UINT64_C(2685821657736338717);
}

static TU_UNUSED uint64_t tu_seed(uint64_t a, uint64_t b)
{
    uint64_t s = a * UINT64_C(0x9E3779B97F4A7C15) ^ (b + UINT64_C(0x632BE59BD9B4E019));
    return s ? s : 1;
}

/* Pattern of a block: a function of (id, offset), so overlapping blocks,
 * stale copies and lost bytes after realloc are all detected. */
static TU_UNUSED uint64_t tu_pattern_word(uint64_t id, size_t word_index)
{
    uint64_t v = (id + 1) * UINT64_C(0x9E3779B97F4A7C15) + (uint64_t)word_index * UINT64_C(0xD6E8FEB86659FD93);
    return v ^ (v >> 29);
}

/* The test programs are built with -fno-builtin (so that the compiler can
 * neither drop nor merge malloc/free/memset calls); the word-sized copies
 * below use the builtins explicitly to stay fast. */

/* Fill the len bytes at offset off (a multiple of 8) of the block at p with
 * the pattern of id: the 8 bytes at block offset 8*i are the bytes of
 * tu_pattern_word(id, i).  The byte at a given offset does not depend on the
 * block size, so a prefix check after realloc works for any sizes. */
static TU_UNUSED void tu_fill_range(void *p, size_t off, size_t len, uint64_t id)
{
    unsigned char *b = p;
    size_t i = off / 8, end = off + len, full = end / 8;
    for (; i < full; i++) {
        uint64_t w = tu_pattern_word(id, i);
        __builtin_memcpy(b + i * 8, &w, 8);
    }
    if (i * 8 < end) {
        uint64_t w = tu_pattern_word(id, i);
        __builtin_memcpy(b + i * 8, &w, end - i * 8);
    }
}

/* Returns the block offset of the first byte in [off, off+len) that does not
 * match the pattern of id, or (size_t)-1 when they all do. */
static TU_UNUSED size_t tu_verify_range(const void *p, size_t off, size_t len, uint64_t id)
{
    const unsigned char *b = p;
    size_t i = off / 8, end = off + len, full = end / 8, k;
    for (; i <= full && i * 8 < end; i++) {
        uint64_t want = tu_pattern_word(id, i), have;
        size_t n = i < full ? 8 : end - i * 8;
        if (n == 8) {
            __builtin_memcpy(&have, b + i * 8, 8);
            if (have == want)
                continue;
        }
        for (k = 0; k < n; k++)
            if (b[i * 8 + k] != ((const unsigned char *)&want)[k])
                return i * 8 + k;
    }
    return (size_t)-1;
}

/* The whole block: fill / first bad offset or (size_t)-1. */
static TU_UNUSED void tu_fill(void *p, size_t n, uint64_t id)
{
    tu_fill_range(p, 0, n, id);
}

static TU_UNUSED size_t tu_verify(const void *p, size_t n, uint64_t id)
{
    return tu_verify_range(p, 0, n, id);
}

/* Blocks of more than TU_SPARSE_MIN bytes carry the pattern only in their
 * first 4 KiB and the first 64 bytes of every 64 KiB: lost or misplaced
 * pages still show, and the threads spend their time in the allocator
 * rather than in memset. */
#define TU_SPARSE_MIN (256 * KiB)
#define TU_SPARSE_STRIDE (64 * KiB)

static TU_UNUSED void tu_fill_sparse(void *p, size_t size, uint64_t id)
{
    if (size <= TU_SPARSE_MIN) {
        tu_fill(p, size, id);
        return;
    }
    tu_fill_range(p, 0, 4096, id);
    for (size_t off = TU_SPARSE_STRIDE; off < size; off += TU_SPARSE_STRIDE)
        tu_fill_range(p, off, size - off < 64 ? size - off : 64, id);
}

/* First bad offset among the first n bytes of a block that
 * tu_fill_sparse filled as a block of size bytes, or (size_t)-1. */
static TU_UNUSED size_t tu_verify_sparse(const void *p, size_t n, size_t size, uint64_t id)
{
    if (size <= TU_SPARSE_MIN)
        return tu_verify(p, n, id);
    size_t bad = tu_verify_range(p, 0, n < 4096 ? n : 4096, id);
    for (size_t off = TU_SPARSE_STRIDE; bad == (size_t)-1 && off < n; off += TU_SPARSE_STRIDE)
        bad = tu_verify_range(p, off, n - off < 64 ? n - off : 64, id);
    return bad;
}

/* Returns the offset of the first non-zero byte, or (size_t)-1. */
static TU_UNUSED size_t tu_first_nonzero(const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t i = 0;
    while (i < n && ((uintptr_t)(b + i) & 7))
        if (b[i++])
            return i - 1;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        __builtin_memcpy(&w, b + i, 8);
        if (w) {
            while (!b[i])
                i++;
            return i;
        }
    }
    for (; i < n; i++)
        if (b[i])
            return i;
    return (size_t)-1;
}

static TU_UNUSED int tu_aligned(const void *p, size_t align)
{
    return ((uintptr_t)p & (align - 1)) == 0;
}

/* Resident set size of this process in bytes (from /proc/self/statm, which
 * is read with raw system calls so that the measurement does not allocate). */
static TU_UNUSED size_t tu_rss_bytes(void)
{
    char buf[256];
    unsigned long size = 0, resident = 0;
    ssize_t got;
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    got = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (got <= 0)
        return 0;
    buf[got] = 0;
    if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
        return 0;
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Scale factor for loop counts: CMALLOC_TEST_QUICK=1 (set for the valgrind
 * runs) makes the heavy loops much shorter. */
static TU_UNUSED int tu_quick(void)
{
    const char *q = getenv("CMALLOC_TEST_QUICK");
    return q && *q && strcmp(q, "0") != 0;
}

/* Programs built with -DCMT_EXPECT_CMALLOC are linked against cmalloc:
 * make sure their malloc really is cmalloc's before testing anything. */
#ifdef CMT_EXPECT_CMALLOC
#include "cmalloc.h"
static TU_UNUSED void tu_expect_cmalloc(void)
{
    void *p = malloc(tu_opaque(48));
    TU_CHECK(p != NULL && cmalloc_owns(p), "malloc of this program is not served by cmalloc");
    free(p);
}
#else
static TU_UNUSED void tu_expect_cmalloc(void)
{
}
#endif

/* Assertions for the Check unit tests (check.h included before this). */
#ifdef ck_assert_msg
#define ck_assert_intact(p, n, id)                                               \
    do {                                                                         \
        size_t bad_ = tu_verify((p), (n), (id));                                 \
        ck_assert_msg(bad_ == (size_t)-1,                                        \
                      "block %p (%zu bytes, id %llu) corrupted at offset %zu",   \
                      (void *)(p), (size_t)(n), (unsigned long long)(id), bad_); \
    } while (0)
#endif

#endif
