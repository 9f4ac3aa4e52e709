/* Unit tests of the public malloc API of cmalloc (glibc 2.36 semantics).
 *
 * Built twice by tests/CMakeLists.txt:
 *   unit_api            linked against the shared cmalloc library, so every
 *                       malloc call of this program (and of libc, libcheck)
 *                       is served by cmalloc;
 *   unit_glibc_reference the same source with -DCMT_REFERENCE_GLIBC, linked
 *                       against nothing but glibc.  It proves that the
 *                       expectations below really are glibc's behaviour.
 *                       cmalloc-only checks (cmalloc_owns, the version, the
 *                       cmalloc part of malloc_stats, the aliases glibc does
 *                       not export) are left out there, and the few places
 *                       where the cmalloc specification deliberately differs
 *                       from what glibc 2.36 really does are marked
 *                       "glibc differs".
 */
#define _GNU_SOURCE
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

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static size_t round_up(size_t n, size_t a)
{
    return (n + a - 1) / a * a;
}

static size_t next_pow2(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* A broad list of request sizes: every interesting power of two -1/0/+1,
 * from 0 up into the mmap range. */
static const size_t common_sizes[] = {
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

/* Requests that can never be satisfied on x86-64 (47-bit user space). */
static const size_t impossible_sizes[] = {
    SIZE_MAX,
    SIZE_MAX - 1,
    SIZE_MAX - 15,
    SIZE_MAX - 4096,
    SIZE_MAX - 4096 * 2 + 1,
    SIZE_MAX - 1024 * 1024,
    (size_t)PTRDIFF_MAX + 1,
    (size_t)PTRDIFF_MAX,
    (size_t)PTRDIFF_MAX - 4096,
    (size_t)1 << 62,
    ((size_t)1 << 62) + 1,
    ((size_t)1 << 60) + 12345,
};
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
static void check_block(void *p, size_t n)
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

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------ */
/* malloc / free basics                                                */

START_TEST(test_served_by_library)
{
    void *p = malloc(tu_opaque(24));
    char *s = strdup("served by the library under test");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(s);
#if CMT_CMALLOC
    /* The test program's own calls and libc's internal ones (strdup) must
     * both reach cmalloc, otherwise this suite tests glibc. */
    ck_assert_msg(cmalloc_owns(p), "malloc() of the test program is not cmalloc's");
    ck_assert_msg(cmalloc_owns(s), "strdup() inside libc does not use cmalloc");
#endif
    free(s);
    free(p);
}
END_TEST

START_TEST(test_malloc_zero)
{
    enum { N = 256 };
    void *v[N];
    int i;
    for (i = 0; i < N; i++) {
        v[i] = malloc(tu_opaque(0));
        ck_assert_msg(v[i] != NULL, "malloc(0) returned NULL");
        ck_assert_aligned(v[i], 16);
#if CMT_CMALLOC
        ck_assert(cmalloc_owns(v[i]));
#endif
    }
    qsort(v, N, sizeof v[0], cmp_ptr);
    for (i = 1; i < N; i++)
        ck_assert_msg(v[i] != v[i - 1], "malloc(0) returned %p twice", v[i]);
    for (i = 0; i < N; i++)
        free(v[i]);
}
END_TEST

START_TEST(test_alignment_usable_writable)
{
    size_t n, i;
    size_t limit = tu_quick() ? 1024 : 8448;
    /* every size up to a few pages */
    for (n = 0; n <= limit; n++) {
        void *p = malloc(tu_opaque(n));
        check_block(p, n);
        free(p);
    }
    for (i = 0; i < N_COMMON; i++) {
        void *p = malloc(tu_opaque(common_sizes[i]));
        check_block(p, common_sizes[i]);
        free(p);
    }
}
END_TEST

START_TEST(test_live_blocks_distinct)
{
    /* Many blocks live at the same time must not overlap: fill each with its
     * own pattern, then verify them all. */
    int n = tu_quick() ? 2000 : 20000;
    void **v = malloc(sizeof(void *) * (size_t)n);
    size_t *sz = malloc(sizeof(size_t) * (size_t)n);
    uint64_t rng = 42;
    int i;
    ck_assert_ptr_nonnull(v);
    ck_assert_ptr_nonnull(sz);
    for (i = 0; i < n; i++) {
        uint64_t r = tu_rand(&rng);
        sz[i] = (r % 16 == 0) ? (size_t)(r >> 20) % (300 * KiB) : (size_t)(r >> 20) % 2000;
        if (i % 997 == 0)
            sz[i] = 1 * MiB + (size_t)(r >> 40) % (3 * MiB);
        v[i] = malloc(tu_opaque(sz[i]));
        ck_assert_ptr_nonnull(v[i]);
        ck_assert_aligned(v[i], 16);
        ck_assert_uint_ge(malloc_usable_size(v[i]), sz[i]);
        tu_fill(v[i], sz[i], (uint64_t)i);
    }
    for (i = 0; i < n; i++)
        ck_assert_intact(v[i], sz[i], (uint64_t)i);
    /* free in a scrambled order, checking the survivors as we go */
    for (i = 0; i < n; i++) {
        int j = (int)((uint64_t)i * 7919 % (uint64_t)n);
        if (j % 5 == 0)
            ck_assert_intact(v[j], sz[j], (uint64_t)j);
        free(v[j]);
    }
    free(sz);
    free(v);
}
END_TEST

START_TEST(test_free_null)
{
    int i;
    for (i = 0; i < 100; i++) {
        errno = 777;
        free(NULL);
        ck_assert_int_eq(errno, 777);
    }
    ck_assert_uint_eq(malloc_usable_size(NULL), 0);
}
END_TEST

START_TEST(test_free_preserves_errno)
{
    static const size_t sizes[] = {0, 1, 16, 100, 1000, 5000, 70000, 300000,
                                   1048577, 2 * 1048576, 64 * 1048576};
    size_t i;
    int round;
    for (round = 0; round < 3; round++) {
        for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            void *p = malloc(tu_opaque(sizes[i]));
            ck_assert_ptr_nonnull(p);
            if (sizes[i])
                ((volatile char *)p)[sizes[i] - 1] = 1;
            errno = 1234;
            free(p);
            ck_assert_msg(errno == 1234, "free of a %zu-byte block changed errno to %d",
                          sizes[i], errno);
        }
    }
    /* also for blocks freed in an order that empties whole runs/pages */
    {
        void *v[512];
        int k;
        for (k = 0; k < 512; k++)
            v[k] = malloc(tu_opaque(2048));
        for (k = 0; k < 512; k++) {
            errno = 1234;
            free(v[k]);
            ck_assert_int_eq(errno, 1234);
        }
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* calloc / reallocarray                                               */

START_TEST(test_calloc_zeroes_fresh)
{
    size_t i;
    for (i = 0; i < N_COMMON; i++) {
        size_t n = common_sizes[i];
        unsigned char *p = calloc(1, tu_opaque(n));
        ck_assert_ptr_nonnull(p);
        ck_assert_aligned(p, 16);
        ck_assert_zeroed(p, n);
        free(p);
        p = calloc(tu_opaque(n), 1);
        ck_assert_ptr_nonnull(p);
        ck_assert_zeroed(p, n);
        free(p);
    }
    {
        unsigned char *p = calloc(tu_opaque(64), 1 * MiB); /* 64 MiB */
        ck_assert_ptr_nonnull(p);
        ck_assert_zeroed(p, 64 * MiB);
        free(p);
    }
}
END_TEST

START_TEST(test_calloc_zeroes_reused)
{
    /* Dirty a block, free it, calloc the same size: the allocator will
     * usually hand back the very same memory, which must be cleared. */
    static const size_t sizes[] = {1, 8, 16, 24, 32, 48, 64, 100, 128, 200, 256,
                                   500, 1000, 1024, 2000, 4096, 5000, 10000,
                                   32768, 65536, 100000, 262144, 600000,
                                   1 * 1048576, 1 * 1048576 + 1, 1500000,
                                   2 * 1048576, 5 * 1048576 + 3};
    size_t i;
    int reps, r;
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        reps = n > 256 * KiB ? 6 : 60;
        if (tu_quick())
            reps = 3;
        for (r = 0; r < reps; r++) {
            unsigned char *p = malloc(tu_opaque(n)), *q;
            ck_assert_ptr_nonnull(p);
            memset(p, 0xAA, malloc_usable_size(p));
            free(tu_opaque_ptr(p));
            switch (r % 3) {
            case 0: q = calloc(1, tu_opaque(n)); break;
            case 1: q = calloc(tu_opaque(n), 1); break;
            default: q = (n % 4 == 0) ? calloc(4, tu_opaque(n / 4)) : calloc(tu_opaque(n), 1); break;
            }
            ck_assert_ptr_nonnull(q);
            ck_assert_zeroed(q, n);
            memset(q, 0xAA, n);
            free(q);
        }
    }
    /* many dirty blocks at once, then callocs of the same sizes */
    {
        enum { N = 300 };
        void *v[N];
        int k;
        for (k = 0; k < N; k++) {
            size_t n = (size_t)(k % 30 + 1) * 40;
            v[k] = malloc(tu_opaque(n));
            ck_assert_ptr_nonnull(v[k]);
            memset(v[k], 0xAA, malloc_usable_size(v[k]));
        }
        for (k = 0; k < N; k++)
            free(v[k]);
        for (k = 0; k < N; k++) {
            size_t n = (size_t)(k % 30 + 1) * 40;
            v[k] = calloc(1, tu_opaque(n));
            ck_assert_ptr_nonnull(v[k]);
            ck_assert_zeroed(v[k], n);
        }
        for (k = 0; k < N; k++)
            free(v[k]);
    }
    /* large: 64 MiB dirty, freed, calloc'ed again */
    {
        size_t n = 64 * MiB;
        unsigned char *p = malloc(tu_opaque(n)), *q;
        ck_assert_ptr_nonnull(p);
        memset(p, 0xAA, n);
        free(tu_opaque_ptr(p));
        q = calloc(tu_opaque(n), 1);
        ck_assert_ptr_nonnull(q);
        ck_assert_zeroed(q, n);
        free(q);
    }
}
END_TEST

START_TEST(test_calloc_overflow)
{
    static const size_t pairs[][2] = {
        {SIZE_MAX, 2},
        {2, SIZE_MAX},
        {SIZE_MAX, SIZE_MAX},
        {SIZE_MAX / 2 + 1, 2},
        {(size_t)1 << 32, (size_t)1 << 32},
        {((size_t)1 << 32) + 1, ((size_t)1 << 32) - 1},
        {SIZE_MAX / 16 + 1, 16},
        {3, SIZE_MAX / 3 + 1},
        {SIZE_MAX, 1},
        {1, SIZE_MAX},
        {(size_t)PTRDIFF_MAX, 1},
    };
    size_t i;
    for (i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        void *p;
        errno = 0;
        p = calloc(tu_opaque(pairs[i][0]), tu_opaque(pairs[i][1]));
        ck_assert_msg(p == NULL, "calloc(%zu, %zu) did not fail", pairs[i][0], pairs[i][1]);
        ck_assert_msg(errno == ENOMEM, "calloc(%zu, %zu): errno %d, want ENOMEM",
                      pairs[i][0], pairs[i][1], errno);
    }
    /* a zero factor is not an overflow */
    {
        void *p = calloc(tu_opaque(0), tu_opaque(SIZE_MAX));
        void *q = calloc(tu_opaque(SIZE_MAX), tu_opaque(0));
        ck_assert_ptr_nonnull(p);
        ck_assert_ptr_nonnull(q);
        ck_assert_ptr_ne(p, q);
        free(p);
        free(q);
    }
}
END_TEST

START_TEST(test_reallocarray)
{
    unsigned char *p, *q;
    size_t i;
    p = reallocarray(NULL, tu_opaque(10), tu_opaque(10));
    check_block(p, 100);
    tu_fill(p, 100, 5);
    q = reallocarray(p, tu_opaque(1000), tu_opaque(100));
    ck_assert_ptr_nonnull(q);
    ck_assert_intact(q, 100, 5);
    check_block(q, 100000);
    /* check_block scribbled over it; refill and grow again */
    tu_fill(q, 100000, 6);
    p = reallocarray(q, tu_opaque(3), tu_opaque(1 * MiB));
    ck_assert_ptr_nonnull(p);
    ck_assert_intact(p, 100000, 6);
    tu_fill(p, 3 * MiB, 7);
    /* overflow: NULL, ENOMEM, old block untouched */
    for (i = 0; i < 4; i++) {
        static const size_t bad[][2] = {
            {SIZE_MAX / 2 + 1, 2}, {(size_t)1 << 33, (size_t)1 << 33},
            {SIZE_MAX, SIZE_MAX}, {7, SIZE_MAX / 7 + 1}};
        errno = 0;
        q = reallocarray(p, tu_opaque(bad[i][0]), tu_opaque(bad[i][1]));
        ck_assert_ptr_null(q);
        ck_assert_int_eq(errno, ENOMEM);
        ck_assert_intact(p, 3 * MiB, 7);
    }
    errno = 0;
    q = reallocarray(NULL, tu_opaque(SIZE_MAX / 4), tu_opaque(8));
    ck_assert_ptr_null(q);
    ck_assert_int_eq(errno, ENOMEM);
    /* shrink */
    q = reallocarray(p, tu_opaque(1000), tu_opaque(3));
    ck_assert_ptr_nonnull(q);
    ck_assert_intact(q, 3000, 7);
    free(q);
}
END_TEST

/* ------------------------------------------------------------------ */
/* impossible sizes                                                    */

#define EXPECT_ENOMEM(call, n)                                                    \
    do {                                                                          \
        void *r_;                                                                 \
        errno = 0;                                                                \
        r_ = (call);                                                              \
        ck_assert_msg(r_ == NULL, "%s with size %zu returned %p", #call, (n), r_); \
        ck_assert_msg(errno == ENOMEM, "%s with size %zu: errno %d, want ENOMEM", \
                      #call, (n), errno);                                         \
    } while (0)

START_TEST(test_impossible_sizes)
{
    size_t i;
    void *live = malloc(tu_opaque(200));
    ck_assert_ptr_nonnull(live);
    tu_fill(live, 200, 99);
    for (i = 0; i < N_IMPOSSIBLE; i++) {
        size_t n = tu_opaque(impossible_sizes[i]);
        void *q;
        int rc;
        EXPECT_ENOMEM(malloc(n), n);
        EXPECT_ENOMEM(calloc(n, 1), n);
        EXPECT_ENOMEM(calloc(1, n), n);
        EXPECT_ENOMEM(realloc(NULL, n), n);
        EXPECT_ENOMEM(reallocarray(NULL, n, 1), n);
        EXPECT_ENOMEM(memalign(16, n), n);
        EXPECT_ENOMEM(memalign(64, n), n);
        EXPECT_ENOMEM(memalign(4096, n), n);
        EXPECT_ENOMEM(memalign(1 * MiB, n), n);
        EXPECT_ENOMEM(aligned_alloc(16, n), n);
        EXPECT_ENOMEM(aligned_alloc(4096, n), n);
        EXPECT_ENOMEM(aligned_alloc(2 * MiB, n), n);
        EXPECT_ENOMEM(valloc(n), n);
        EXPECT_ENOMEM(pvalloc(n), n);
        q = (void *)&i;
        rc = posix_memalign(&q, 16, n);
        ck_assert_msg(rc == ENOMEM, "posix_memalign(16, %zu) returned %d", n, rc);
        ck_assert_msg(q == (void *)&i, "posix_memalign failure modified *memptr");
        rc = posix_memalign(&q, 1 * MiB, n);
        ck_assert_msg(rc == ENOMEM, "posix_memalign(1 MiB, %zu) returned %d", n, rc);
        ck_assert_msg(q == (void *)&i, "posix_memalign failure modified *memptr");
        /* realloc of a live block: fails, the block survives */
        errno = 0;
        q = realloc(live, n);
        ck_assert_msg(q == NULL, "realloc(p, %zu) succeeded", n);
        ck_assert_int_eq(errno, ENOMEM);
        ck_assert_intact(live, 200, 99);
    }
    /* the allocator still works afterwards */
    {
        void *p = malloc(tu_opaque(1000));
        check_block(p, 1000);
        free(p);
    }
    free(live);
}
END_TEST

/* ------------------------------------------------------------------ */
/* aligned allocation                                                  */

START_TEST(test_posix_memalign_einval)
{
    static const size_t bad[] = {0, 1, 2, 3, 4, sizeof(void *) / 2, 12, 24, 40, 48,
                                 100, 4095, 4097, 3 * 4096, 3 * 1048576,
                                 SIZE_MAX, SIZE_MAX / 2, (size_t)PTRDIFF_MAX + 3};
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *sentinel = (void *)&bad[i];
        void *q = sentinel;
        int rc = posix_memalign(&q, tu_opaque(bad[i]), tu_opaque(64));
        ck_assert_msg(rc == EINVAL, "posix_memalign(align=%zu) returned %d, want EINVAL",
                      bad[i], rc);
        ck_assert_msg(q == sentinel, "posix_memalign(align=%zu) modified *memptr", bad[i]);
    }
}
END_TEST

/* The six request sizes the specification asks for, per alignment. */
static void align_sizes(size_t align, size_t out[6])
{
    out[0] = 0;
    out[1] = 1;
    out[2] = align - 1;
    out[3] = align;
    out[4] = align + 1;
    out[5] = 3 * align;
}

enum aligned_fn { VIA_POSIX_MEMALIGN, VIA_MEMALIGN, VIA_ALIGNED_ALLOC };

static void *aligned_via(enum aligned_fn fn, size_t align, size_t n)
{
    void *p = NULL;
    int rc;
    switch (fn) {
    case VIA_POSIX_MEMALIGN:
        rc = posix_memalign(&p, tu_opaque(align), tu_opaque(n));
        ck_assert_msg(rc == 0, "posix_memalign(%zu, %zu) returned %d", align, n, rc);
        return p;
    case VIA_MEMALIGN:
        p = memalign(tu_opaque(align), tu_opaque(n));
        break;
    case VIA_ALIGNED_ALLOC:
        p = aligned_alloc(tu_opaque(align), tu_opaque(n));
        break;
    }
    ck_assert_msg(p != NULL, "%s(%zu, %zu) failed",
                  fn == VIA_MEMALIGN ? "memalign" : "aligned_alloc", align, n);
    return p;
}

/* Every power-of-two alignment from min_align to 4 MiB, with the six sizes
 * of align_sizes, all live at once per alignment. */
static void check_aligned_family(enum aligned_fn fn, size_t min_align)
{
    for (size_t align = min_align; align <= 4 * MiB; align *= 2) {
        size_t sizes[6];
        void *keep[6];
        align_sizes(align, sizes);
        for (size_t s = 0; s < 6; s++) {
            void *p = aligned_via(fn, align, sizes[s]);
            ck_assert_aligned(p, align);
            check_block(p, sizes[s]);
            tu_fill(p, sizes[s], align * 8 + s);
            keep[s] = p;
        }
        for (size_t s = 0; s < 6; s++) {
            ck_assert_intact(keep[s], sizes[s], align * 8 + s);
            free(keep[s]);
        }
    }
}

START_TEST(test_posix_memalign_pow2)
{
    check_aligned_family(VIA_POSIX_MEMALIGN, sizeof(void *));
}
END_TEST

START_TEST(test_memalign_aligned_alloc_pow2)
{
    check_aligned_family(VIA_MEMALIGN, 1);
    check_aligned_family(VIA_ALIGNED_ALLOC, 1);
}
END_TEST

START_TEST(test_memalign_non_pow2)
{
    /* glibc 2.36 rounds a non-power-of-two alignment up to the next power of
     * two, for memalign and for aligned_alloc (which is memalign there). */
    static const size_t aligns[] = {0, 3, 5, 6, 12, 24, 48, 96, 100, 1000, 3000,
                                    5000, 40000, 3 * 1048576 / 2};
    static const size_t sizes[] = {0, 1, 100, 5000, 300000};
    size_t a, s;
    int fn;
    for (fn = 0; fn < 2; fn++)
        for (a = 0; a < sizeof aligns / sizeof aligns[0]; a++)
            for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
                size_t want = next_pow2(aligns[a]);
                void *p;
                errno = 0;
                p = fn == 0 ? memalign(tu_opaque(aligns[a]), tu_opaque(sizes[s]))
                            : aligned_alloc(tu_opaque(aligns[a]), tu_opaque(sizes[s]));
                ck_assert_msg(p != NULL, "%s(%zu, %zu) failed (errno %d)",
                              fn ? "aligned_alloc" : "memalign", aligns[a], sizes[s], errno);
                ck_assert_msg(tu_aligned(p, want), "%s(%zu, %zu) = %p, not %zu-aligned",
                              fn ? "aligned_alloc" : "memalign", aligns[a], sizes[s], p, want);
                check_block(p, sizes[s]);
                free(p);
            }
}
END_TEST

START_TEST(test_memalign_absurd_alignment)
{
    /* glibc: an alignment above SIZE_MAX/2+1 is EINVAL, not a crash. */
    static const size_t aligns[] = {SIZE_MAX / 2 + 2, SIZE_MAX - 1, SIZE_MAX};
    size_t a;
    for (a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
        void *p;
        errno = 0;
        p = memalign(tu_opaque(aligns[a]), tu_opaque(100));
        ck_assert_ptr_null(p);
        ck_assert_int_eq(errno, EINVAL);
        errno = 0;
        p = aligned_alloc(tu_opaque(aligns[a]), tu_opaque(100));
        ck_assert_ptr_null(p);
        ck_assert_int_eq(errno, EINVAL);
    }
    /* the largest valid power of two cannot be satisfied: ENOMEM */
    {
        void *p;
        errno = 0;
        p = memalign(tu_opaque(SIZE_MAX / 2 + 1), tu_opaque(100));
        ck_assert_ptr_null(p);
        ck_assert_int_eq(errno, ENOMEM);
        errno = 0;
        p = memalign(tu_opaque((size_t)1 << 50), tu_opaque(1));
        ck_assert_ptr_null(p);
        ck_assert_int_eq(errno, ENOMEM);
    }
}
END_TEST

START_TEST(test_valloc)
{
    size_t pg = page_size(), i;
    static const size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 10000, 65536,
                                   1048575, 1048577, 3 * 1048576};
    void *keep[sizeof sizes / sizeof sizes[0]];
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = valloc(tu_opaque(sizes[i]));
        ck_assert_ptr_nonnull(p);
        ck_assert_aligned(p, pg);
        check_block(p, sizes[i]);
        tu_fill(p, sizes[i], i);
        keep[i] = p;
    }
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        ck_assert_intact(keep[i], sizes[i], i);
        free(keep[i]);
    }
}
END_TEST

START_TEST(test_pvalloc)
{
    size_t pg = page_size(), i;
    static const size_t sizes[] = {1, 100, 4095, 4096, 4097, 10000, 65536,
                                   1048575, 1048577, 3 * 1048576};
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t want = round_up(sizes[i], pg);
        void *p = pvalloc(tu_opaque(sizes[i]));
        ck_assert_ptr_nonnull(p);
        ck_assert_aligned(p, pg);
        ck_assert_msg(malloc_usable_size(p) >= want, "pvalloc(%zu): usable %zu < %zu",
                      sizes[i], malloc_usable_size(p), want);
        /* the whole rounded-up size is the caller's */
        check_block(p, want);
        free(p);
    }
#if CMT_CMALLOC
    /* pvalloc(0) gives a whole page.  (glibc differs: its pvalloc(0) rounds
     * to a 1-byte request, so this is checked for cmalloc only.) */
    {
        void *p = pvalloc(tu_opaque(0));
        ck_assert_ptr_nonnull(p);
        ck_assert_aligned(p, pg);
        ck_assert_msg(malloc_usable_size(p) >= pg, "pvalloc(0): usable %zu < page",
                      malloc_usable_size(p));
        check_block(p, pg);
        free(p);
    }
#else
    {
        void *p = pvalloc(tu_opaque(0));
        ck_assert_ptr_nonnull(p);
        ck_assert_aligned(p, pg);
        free(p);
    }
#endif
}
END_TEST

/* ------------------------------------------------------------------ */
/* realloc                                                             */

START_TEST(test_realloc_zero_frees)
{
    int i, n = tu_quick() ? 2000 : 20000;
    size_t before, after;
    void *p = malloc(tu_opaque(100));
    void *r;
    ck_assert_ptr_nonnull(p);
    r = realloc(p, tu_opaque(0));
    ck_assert_ptr_null(r);
    /* If realloc(p, 0) did not free, these loops would leak 20 MB and
     * 150 MB. */
    before = tu_rss_bytes();
    for (i = 0; i < n; i++) {
        p = malloc(tu_opaque(1000 + (size_t)(i % 7) * 16));
        ck_assert_ptr_nonnull(p);
        memset(p, i, 1000);
        r = realloc(p, tu_opaque(0));
        ck_assert_ptr_null(r);
    }
    for (i = 0; i < 50; i++) {
        p = malloc(tu_opaque(3 * MiB));
        ck_assert_ptr_nonnull(p);
        memset(p, i, 3 * MiB);
        r = realloc(p, tu_opaque(0));
        ck_assert_ptr_null(r);
    }
    after = tu_rss_bytes();
    ck_assert_msg(after < before + 8 * MiB, "realloc(p, 0) leaks: RSS %zu -> %zu", before,
                  after);
}
END_TEST

START_TEST(test_realloc_null_is_malloc)
{
    static const size_t sizes[] = {0, 1, 16, 100, 4096, 100000, 1048577, 4 * 1048576};
    size_t i;
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = realloc(NULL, tu_opaque(sizes[i]));
        check_block(p, sizes[i]);
        free(p);
    }
}
END_TEST

static void *realloc_step(void *p, size_t old, size_t new, uint64_t *id)
{
    unsigned char *q = realloc(p, tu_opaque(new));
    ck_assert_msg(q != NULL, "realloc %zu -> %zu failed", old, new);
    ck_assert_aligned(q, 16);
    ck_assert_msg(malloc_usable_size(q) >= new, "realloc %zu -> %zu: usable %zu", old, new,
                  malloc_usable_size(q));
    {
        size_t keep = old < new ? old : new;
        size_t bad = tu_verify(q, keep, *id);
        ck_assert_msg(bad == (size_t)-1,
                      "realloc %zu -> %zu lost contents at offset %zu", old, new, bad);
    }
#if CMT_CMALLOC
    ck_assert(cmalloc_owns(q));
#endif
    (*id)++;
    tu_fill(q, new, *id);
    return q;
}

START_TEST(test_realloc_preserves)
{
    static const size_t chain[] = {16, 4096, 2 * 1048576, 64 * 1048576, 100};
    uint64_t id = 1000;
    size_t i, old;
    unsigned char *p = malloc(tu_opaque(chain[0]));
    ck_assert_ptr_nonnull(p);
    tu_fill(p, chain[0], id);
    old = chain[0];
    for (i = 1; i < sizeof chain / sizeof chain[0]; i++) {
        p = realloc_step(p, old, chain[i], &id);
        old = chain[i];
    }
    /* a ladder over every power of two -1/0/+1 up to 16 MiB and back */
    for (i = 0; i < 2; i++) {
        int k;
        for (k = 0; k <= 24; k++) {
            int d;
            for (d = -1; d <= 1; d++) {
                int kk = i == 0 ? k : 24 - k;
                size_t n = ((size_t)1 << kk) + (size_t)(i == 0 ? d : -d);
                if (n == 0)
                    continue; /* realloc(p, 0) frees; tested separately */
                p = realloc_step(p, old, n, &id);
                old = n;
            }
        }
    }
    /* small steps inside and across small classes */
    for (i = 1; i < 3000; i += 3) {
        p = realloc_step(p, old, i, &id);
        old = i;
    }
    free(p);
}
END_TEST

START_TEST(test_realloc_failure_keeps_block)
{
    static const size_t olds[] = {1, 100, 5000, 200000, 2 * 1048576};
    size_t i, j;
    for (i = 0; i < sizeof olds / sizeof olds[0]; i++) {
        unsigned char *p = malloc(tu_opaque(olds[i]));
        size_t usable;
        ck_assert_ptr_nonnull(p);
        tu_fill(p, olds[i], 77 + i);
        usable = malloc_usable_size(p);
        for (j = 0; j < N_IMPOSSIBLE; j++) {
            void *q;
            errno = 0;
            q = realloc(p, tu_opaque(impossible_sizes[j]));
            ck_assert_msg(q == NULL, "realloc(%zu-byte block, %zu) succeeded", olds[i],
                          impossible_sizes[j]);
            ck_assert_int_eq(errno, ENOMEM);
            ck_assert_intact(p, olds[i], 77 + i);
            ck_assert_uint_eq(malloc_usable_size(p), usable);
#if CMT_CMALLOC
            ck_assert(cmalloc_owns(p));
#endif
        }
        /* still a perfectly good block */
        p = realloc(p, tu_opaque(olds[i] * 2));
        ck_assert_ptr_nonnull(p);
        ck_assert_intact(p, olds[i], 77 + i);
        free(p);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* boundaries (generic; the exact class table is in unit_sizeclass)    */

START_TEST(test_size_ladder_distinct)
{
    /* Every size 1..4096 live at once, then every power-of-two neighbour up
     * to 8 MiB: blocks are distinct, usable >= request, contents survive. */
    size_t n = tu_quick() ? 512 : 4096, i;
    void **v = calloc(n + 1, sizeof(void *));
    ck_assert_ptr_nonnull(v);
    for (i = 1; i <= n; i++) {
        v[i] = malloc(tu_opaque(i));
        ck_assert_ptr_nonnull(v[i]);
        ck_assert_aligned(v[i], 16);
        ck_assert_uint_ge(malloc_usable_size(v[i]), i);
        tu_fill(v[i], i, i);
    }
    for (i = 1; i <= n; i++) {
        ck_assert_intact(v[i], i, i);
        free(v[i]);
    }
    free(v);
    {
        void *w[3 * 24];
        size_t sz[3 * 24];
        int k, d, m = 0;
        for (k = 1; k <= 23; k++)
            for (d = -1; d <= 1; d++) {
                sz[m] = ((size_t)1 << k) + (size_t)d;
                w[m] = malloc(tu_opaque(sz[m]));
                ck_assert_ptr_nonnull(w[m]);
                ck_assert_aligned(w[m], 16);
                ck_assert_uint_ge(malloc_usable_size(w[m]), sz[m]);
                tu_fill(w[m], sz[m], (uint64_t)m + 5000);
                m++;
            }
        for (k = 0; k < m; k++) {
            ck_assert_intact(w[k], sz[k], (uint64_t)k + 5000);
            free(w[k]);
        }
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* mallopt, malloc_trim, mallinfo, malloc_stats, malloc_info           */

START_TEST(test_mallopt_supported)
{
    void *p;
    ck_assert_int_eq(mallopt(M_MMAP_THRESHOLD, 256 * 1024), 1);
    ck_assert_int_eq(mallopt(M_ARENA_MAX, 4), 1);
    ck_assert_int_eq(mallopt(M_TRIM_THRESHOLD, 512 * 1024), 1);
    p = malloc(tu_opaque(300000));
    check_block(p, 300000);
    free(p);
}
END_TEST

START_TEST(test_mallopt_unsupported)
{
#if CMT_CMALLOC
    /* glibc differs: it returns 1 for any parameter number it does not know. */
    ck_assert_int_eq(mallopt(12345, 1), 0);
    ck_assert_int_eq(mallopt(-12345, 1), 0);
    ck_assert_int_eq(mallopt(999, 0), 0);
#else
    ck_assert_int_eq(mallopt(12345, 1), 1);
#endif
}
END_TEST

START_TEST(test_malloc_trim)
{
    enum { N = 2000 };
    void *v[N];
    int i, rc;
    for (i = 0; i < N; i++) {
        v[i] = malloc(tu_opaque((size_t)(i % 50) * 100 + 1));
        ck_assert_ptr_nonnull(v[i]);
    }
    for (i = 0; i < N; i++)
        free(v[i]);
    rc = malloc_trim(0);
    ck_assert_msg(rc == 0 || rc == 1, "malloc_trim(0) returned %d", rc);
    rc = malloc_trim(1 * MiB);
    ck_assert_msg(rc == 0 || rc == 1, "malloc_trim(1 MiB) returned %d", rc);
    /* still usable */
    for (i = 0; i < 100; i++) {
        v[i] = malloc(tu_opaque((size_t)i * 300));
        check_block(v[i], (size_t)i * 300);
    }
    for (i = 0; i < 100; i++)
        free(v[i]);
}
END_TEST

START_TEST(test_mallinfo2_accounting)
{
    enum { N = 100 };
    void *v[N];
    size_t base, mid, after;
    int i;
    base = heap_in_use();
    for (i = 0; i < N; i++) {
        v[i] = malloc(tu_opaque(1000));
        ck_assert_ptr_nonnull(v[i]);
        memset(v[i], i, 1000);
    }
    mid = heap_in_use();
    ck_assert_msg(mid >= base + N * 1000, "in use grew by %zd, want >= %d",
                  (ssize_t)(mid - base), N * 1000);
    for (i = 0; i < N; i++)
        free(v[i]);
    after = heap_in_use();
    ck_assert_msg(after + 90000 <= mid, "in use only shrank by %zd after freeing 100000 B",
                  (ssize_t)(mid - after));

    /* a large (mmap range) block is accounted too */
    {
        void *big = malloc(tu_opaque(8 * MiB));
        size_t with;
        ck_assert_ptr_nonnull(big);
        with = heap_in_use();
        ck_assert_msg(with >= after + 8 * MiB, "8 MiB block not counted (%zu -> %zu)", after,
                      with);
        free(big);
        ck_assert_msg(heap_in_use() + 8 * MiB <= with, "8 MiB block still counted after free");
    }
    {
        struct mallinfo2 mi = mallinfo2();
        /* the bytes in use cannot exceed what was obtained from the system */
        ck_assert_uint_le(mi.uordblks, mi.arena + mi.hblkhd);
    }
}
END_TEST

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
START_TEST(test_mallinfo_matches_mallinfo2)
{
    void *keep = malloc(tu_opaque(5000));
    struct mallinfo2 b;
    struct mallinfo a;
    ck_assert_ptr_nonnull(keep);
    b = mallinfo2();
    a = mallinfo();
    ck_assert_int_eq(a.arena, (int)b.arena);
    ck_assert_int_eq(a.uordblks, (int)b.uordblks);
    ck_assert_int_eq(a.fordblks, (int)b.fordblks);
    ck_assert_int_eq(a.hblkhd, (int)b.hblkhd);
    ck_assert_int_eq(a.hblks, (int)b.hblks);
    ck_assert_int_ge(a.uordblks, 5000);
    free(keep);
}
END_TEST
#pragma GCC diagnostic pop

/* Runs fn with fd 2 redirected into a memfd; returns what was written. */
static size_t capture_fd2(void (*fn)(void), char *buf, size_t cap)
{
    int fd, saved;
    size_t total = 0;
    ssize_t got;
    fflush(stderr);
    fd = memfd_create("cmalloc-test-stderr", MFD_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    saved = dup(2);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(dup2(fd, 2), 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    while (total < cap - 1 && (got = read(fd, buf + total, cap - 1 - total)) > 0)
        total += (size_t)got;
    buf[total] = 0;
    close(fd);
    return total;
}

/* Offset of the first line matching the extended regex, or -1. */
static long line_matching(const char *text, const char *re)
{
    regex_t rx;
    regmatch_t m;
    long at = -1;
    ck_assert_int_eq(regcomp(&rx, re, REG_EXTENDED | REG_NEWLINE), 0);
    if (regexec(&rx, text, 1, &m, 0) == 0)
        at = (long)m.rm_so;
    regfree(&rx);
    return at;
}

static void call_malloc_stats(void)
{
    malloc_stats();
}

START_TEST(test_malloc_stats_layout)
{
    static char out[1 << 16];
    void *small = malloc(tu_opaque(100000));
    void *big = malloc(tu_opaque(4 * MiB));
    long arena, total, mmap_regions, mmap_bytes;
    size_t sys_bytes = 0, inuse_bytes = 0;
    const char *t;
    ck_assert_ptr_nonnull(small);
    ck_assert_ptr_nonnull(big);
    memset(small, 1, 100000);
    memset(big, 1, 4 * MiB);
    ck_assert_uint_gt(capture_fd2(call_malloc_stats, out, sizeof out), 0);

    arena = line_matching(out, "^Arena 0:$");
    total = line_matching(out, "^Total \\(incl\\. mmap\\):$");
    mmap_regions = line_matching(out, "^max mmap regions = +[0-9]+$");
    mmap_bytes = line_matching(out, "^max mmap bytes   = +[0-9]+$");
    ck_assert_msg(arena == 0, "malloc_stats does not start with 'Arena 0:':\n%s", out);
    ck_assert_msg(line_matching(out, "^system bytes     = +[0-9]+$") > arena, "%s", out);
    ck_assert_msg(line_matching(out, "^in use bytes     = +[0-9]+$") > arena, "%s", out);
    ck_assert_msg(total > arena, "no Total section:\n%s", out);
    ck_assert_msg(mmap_regions > total, "no max mmap regions line:\n%s", out);
    ck_assert_msg(mmap_bytes > mmap_regions, "no max mmap bytes line:\n%s", out);

    t = out + total;
    ck_assert_msg(sscanf(t, "Total (incl. mmap):\nsystem bytes = %zu\nin use bytes = %zu",
                         &sys_bytes, &inuse_bytes) == 2,
                  "cannot parse Total section:\n%s", t);
    ck_assert_msg(inuse_bytes >= 4 * MiB + 100000, "Total in use %zu < live bytes", inuse_bytes);
    ck_assert_msg(sys_bytes >= inuse_bytes, "Total system %zu < in use %zu", sys_bytes,
                  inuse_bytes);
#if CMT_CMALLOC
    {
        char re[128];
        long own;
        snprintf(re, sizeof re, "^cmalloc %s: ", cmalloc_version());
        own = line_matching(out, re);
        ck_assert_msg(own > mmap_bytes, "no 'cmalloc %s: ' line after glibc's part:\n%s",
                      cmalloc_version(), out);
        ck_assert_msg(line_matching(out, "^cmalloc [0-9]+\\.[0-9]+\\.[0-9]+: [0-9]+ arenas?, "
                                         "[0-9]+ threads?") == own,
                      "cmalloc line malformed:\n%s", out);
        ck_assert_msg(line_matching(out, "^ *bin +block size +in use +free +runs +taken "
                                         "+returned *$") > own,
                      "no bin table header:\n%s", out);
    }
#endif
    free(big);
    free(small);
}
END_TEST

static char info_buf[1 << 18];
static char info_stdio_buf[BUFSIZ];

static FILE *memfd_stream(int *fd_out)
{
    int fd = memfd_create("cmalloc-test-info", MFD_CLOEXEC);
    FILE *fp;
    ck_assert_int_ge(fd, 0);
    fp = fdopen(fd, "w+");
    ck_assert_ptr_nonnull(fp);
    /* a caller-supplied buffer: stdio must not allocate inside malloc_info */
    setvbuf(fp, info_stdio_buf, _IOFBF, sizeof info_stdio_buf);
    *fd_out = fd;
    return fp;
}

START_TEST(test_malloc_info_xml)
{
    int fd;
    FILE *fp = memfd_stream(&fd);
    void *keep = malloc(tu_opaque(3000));
    size_t n;
    char *end;
    ck_assert_ptr_nonnull(keep);
    ck_assert_int_eq(malloc_info(0, fp), 0);
    fflush(fp);
    rewind(fp);
    n = fread(info_buf, 1, sizeof info_buf - 1, fp);
    info_buf[n] = 0;
    fclose(fp);
    ck_assert_msg(strncmp(info_buf, "<malloc version=\"1\">", 20) == 0,
                  "malloc_info output starts with: %.60s", info_buf);
    end = info_buf + n;
    while (end > info_buf && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        *--end = 0;
    ck_assert_msg(end - info_buf >= 9 && strcmp(end - 9, "</malloc>") == 0,
                  "malloc_info output does not end with </malloc>: %s",
                  end - info_buf > 60 ? end - 60 : info_buf);
    free(keep);
}
END_TEST

START_TEST(test_malloc_info_bad_options)
{
    int fd;
    FILE *fp = memfd_stream(&fd);
    int rc;
    errno = 0;
    rc = malloc_info(1, fp);
    /* glibc differs from its manual page: it returns EINVAL itself and
     * leaves errno alone; cmalloc does the same. */
    ck_assert_int_eq(rc, EINVAL);
    ck_assert_int_eq(errno, 0);
    fclose(fp);
}
END_TEST

/* ------------------------------------------------------------------ */
/* aliases                                                             */

typedef void (*free_fn)(void *p, size_t n, size_t align);

/* Allocate-and-release 20000 times through fn; if fn did not really free,
 * RSS would grow by > 20 MB. */
static void check_really_frees(free_fn fn, int aligned)
{
    size_t before = tu_rss_bytes(), after;
    int i, n = tu_quick() ? 2000 : 20000;
    for (i = 0; i < n; i++) {
        size_t sz = 1000 + (size_t)(i % 5) * 64;
        void *p = aligned ? aligned_alloc(64, tu_opaque(sz)) : malloc(tu_opaque(sz));
        ck_assert_ptr_nonnull(p);
        memset(p, 0x11, sz);
        fn(p, sz, 64);
    }
    after = tu_rss_bytes();
    ck_assert_msg(after < before + 8 * MiB, "memory not released: RSS %zu -> %zu", before,
                  after);
}

static void via_libc_free(void *p, size_t n, size_t a)
{
    (void)n;
    (void)a;
    __libc_free(p);
}

START_TEST(test_libc_aliases)
{
    unsigned char *p, *q;
    p = __libc_malloc(tu_opaque(300));
    check_block(p, 300);
    tu_fill(p, 300, 1);
    p = __libc_realloc(p, tu_opaque(70000));
    ck_assert_ptr_nonnull(p);
    ck_assert_intact(p, 300, 1);
    check_block(p, 70000);
    __libc_free(p);

    q = malloc(tu_opaque(500));
    memset(q, 0xAA, 500);
    free(tu_opaque_ptr(q));
    q = __libc_calloc(tu_opaque(5), tu_opaque(100));
    ck_assert_ptr_nonnull(q);
    ck_assert_zeroed(q, 500);
    check_block(q, 500);
    __libc_free(q);

    p = __libc_memalign(tu_opaque(256), tu_opaque(1000));
    ck_assert_ptr_nonnull(p);
    ck_assert_aligned(p, 256);
    check_block(p, 1000);
    __libc_free(p);

    __libc_free(NULL);
    check_really_frees(via_libc_free, 0);
}
END_TEST

#if CMT_CMALLOC
static void via_cfree(void *p, size_t n, size_t a)
{
    (void)n;
    (void)a;
    cfree(p);
}

static void via_free_sized(void *p, size_t n, size_t a)
{
    (void)a;
    free_sized(p, n);
}

static void via_free_aligned_sized(void *p, size_t n, size_t a)
{
    free_aligned_sized(p, a, n);
}

START_TEST(test_other_aliases)
{
    void *p = NULL;
    int rc = __posix_memalign(&p, tu_opaque(128), tu_opaque(1000));
    ck_assert_int_eq(rc, 0);
    ck_assert_aligned(p, 128);
    check_block(p, 1000);
    free(p);
    p = &rc;
    ck_assert_int_eq(__posix_memalign(&p, tu_opaque(24), tu_opaque(10)), EINVAL);
    ck_assert_ptr_eq(p, &rc);

    p = malloc(tu_opaque(10));
    cfree(p);
    cfree(NULL);
    check_really_frees(via_cfree, 0);
}
END_TEST

START_TEST(test_free_sized)
{
    static const size_t sizes[] = {0, 1, 16, 17, 100, 1024, 4097, 65536, 300000,
                                   1048577, 5 * 1048576};
    size_t i, a;
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = malloc(tu_opaque(sizes[i]));
        check_block(p, sizes[i]);
        free_sized(p, sizes[i]);
        p = calloc(1, tu_opaque(sizes[i]));
        ck_assert_ptr_nonnull(p);
        free_sized(p, sizes[i]);
    }
    free_sized(NULL, 0);
    free_sized(NULL, 100);
    for (a = 16; a <= 1 * MiB; a *= 4)
        for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t n = round_up(sizes[i] ? sizes[i] : a, a);
            void *p = aligned_alloc(tu_opaque(a), tu_opaque(n));
            ck_assert_ptr_nonnull(p);
            ck_assert_aligned(p, a);
            check_block(p, n);
            free_aligned_sized(p, a, n);
        }
    free_aligned_sized(NULL, 64, 0);
    check_really_frees(via_free_sized, 0);
    check_really_frees(via_free_aligned_sized, 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* cmalloc_owns and the version                                        */

static int a_global = 5;
static char a_global_array[256];

START_TEST(test_owns_live)
{
    size_t i;
    void *p;
    for (i = 0; i < N_COMMON; i++) {
        p = malloc(tu_opaque(common_sizes[i]));
        ck_assert_ptr_nonnull(p);
        ck_assert_msg(cmalloc_owns(p), "malloc(%zu) = %p not owned", common_sizes[i], p);
        free(p);
        p = calloc(1, tu_opaque(common_sizes[i]));
        ck_assert_ptr_nonnull(p);
        ck_assert_msg(cmalloc_owns(p), "calloc(1, %zu) = %p not owned", common_sizes[i], p);
        free(p);
    }
    p = malloc(tu_opaque(64 * MiB));
    ck_assert_ptr_nonnull(p);
    ck_assert(cmalloc_owns(p));
    free(p);
    for (i = 16; i <= 2 * MiB; i *= 2) {
        p = memalign(tu_opaque(i), tu_opaque(i / 2 + 1));
        ck_assert_ptr_nonnull(p);
        ck_assert_msg(cmalloc_owns(p), "memalign(%zu) = %p not owned", i, p);
        free(p);
    }
    p = realloc(NULL, tu_opaque(10));
    ck_assert(cmalloc_owns(p));
    p = realloc(p, tu_opaque(3 * MiB));
    ck_assert(cmalloc_owns(p));
    p = realloc(p, tu_opaque(33));
    ck_assert(cmalloc_owns(p));
    free(p);
}
END_TEST

START_TEST(test_owns_foreign)
{
    int on_stack = 3;
    char stack_buf[128];
    size_t pg = page_size(), i;
    void *map;
    memset(stack_buf, 0, sizeof stack_buf);
    ck_assert(!cmalloc_owns(NULL));
    ck_assert(!cmalloc_owns(&on_stack));
    ck_assert(!cmalloc_owns(stack_buf));
    ck_assert(!cmalloc_owns(stack_buf + 16));
    ck_assert(!cmalloc_owns(&a_global));
    ck_assert(!cmalloc_owns(a_global_array));
    ck_assert(!cmalloc_owns(a_global_array + 16));
    ck_assert(!cmalloc_owns("a string literal"));
    map = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(map != MAP_FAILED);
    ck_assert(!cmalloc_owns(map));
    ck_assert(!cmalloc_owns((char *)map + pg));
    ck_assert(!cmalloc_owns((char *)map + 16));
    munmap(map, 4 * pg);

    /* interior pointers of live blocks are not block starts */
    for (i = 0; i < N_COMMON; i++) {
        size_t n = common_sizes[i];
        char *p;
        if (n < 32)
            continue;
        p = malloc(tu_opaque(n));
        ck_assert_ptr_nonnull(p);
        ck_assert(cmalloc_owns(p));
        ck_assert_msg(!cmalloc_owns(p + 16), "p+16 of a %zu-byte block is owned", n);
        ck_assert_msg(!cmalloc_owns(p + 1), "p+1 of a %zu-byte block is owned", n);
        if (n >= 2 * pg)
            ck_assert_msg(!cmalloc_owns(p + pg), "p+page of a %zu-byte block is owned", n);
        free(p);
    }
}
END_TEST

START_TEST(test_owns_freed)
{
    /* "start of a live block": a freed block is no longer live */
    static const size_t sizes[] = {1, 100, 5000, 300000, 3 * 1048576};
    size_t i;
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = malloc(tu_opaque(sizes[i]));
        uintptr_t addr = (uintptr_t)p;
        ck_assert_ptr_nonnull(p);
        ck_assert(cmalloc_owns(p));
        free(p);
        ck_assert_msg(!cmalloc_owns((void *)addr), "freed %zu-byte block still owned",
                      sizes[i]);
    }
}
END_TEST

/* Blocks freed by another thread, which is still alive (so whatever it
 * caches is still cached), are not live either. */
struct owns_handoff {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stage; /* 1: the thread has freed its blocks, 2: main is done */
    uintptr_t addr[64];
};

static void *alloc_free_and_wait(void *arg)
{
    struct owns_handoff *h = arg;
    void *p[64];
    int i;
    for (i = 0; i < 64; i++) {
        p[i] = malloc(tu_opaque((size_t)(i % 8) * 100 + 1));
        h->addr[i] = (uintptr_t)p[i];
    }
    for (i = 0; i < 64; i++)
        free(p[i]);
    pthread_mutex_lock(&h->lock);
    h->stage = 1;
    pthread_cond_broadcast(&h->cond);
    while (h->stage != 2)
        pthread_cond_wait(&h->cond, &h->lock);
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

START_TEST(test_owns_freed_other_thread)
{
    /* A block another thread freed may wait in that thread's cache (the
     * header says it may still count as live there); once the thread has
     * exited, its cache is back in the arenas and the blocks are free. */
    static struct owns_handoff h = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {0}};
    pthread_t t;
    int i, still_owned = 0;
    ck_assert_int_eq(pthread_create(&t, NULL, alloc_free_and_wait, &h), 0);
    pthread_mutex_lock(&h.lock);
    while (h.stage != 1)
        pthread_cond_wait(&h.cond, &h.lock);
    h.stage = 2;
    pthread_cond_broadcast(&h.cond);
    pthread_mutex_unlock(&h.lock);
    pthread_join(t, NULL);
    for (i = 0; i < 64; i++)
        still_owned += cmalloc_owns((void *)h.addr[i]) != 0;
    ck_assert_msg(still_owned == 0,
                  "%d of 64 blocks freed by an exited thread are still owned", still_owned);
}
END_TEST

/* Blocks freed by a thread that is not attached to their arena: they must
 * not serve that thread's next requests (its data would share cache lines
 * with blocks the owner still uses), and they go back to the arena they
 * came from, still guarded against double frees on the way. M_ARENA_MAX
 * makes room for the thread to get an arena of its own whatever the number
 * of CPUs. 300 blocks are more than a thread holds before it hands them
 * back. */
enum { REMOTE_N = 300, REMOTE_SIZE = 24, REMOTE_OWN = 64 };

enum remote_misuse { REMOTE_NO_MISUSE, REMOTE_TWICE_AT_ONCE, REMOTE_TWICE_AFTER_ALL };

struct remote_job {
    void *given[REMOTE_N]; /* allocated by the main thread */
    int reused;            /* the thread's own blocks that were given ones */
    enum remote_misuse misuse;
};

static int is_given(const struct remote_job *job, const void *p)
{
    int i;
    for (i = 0; i < REMOTE_N; i++) {
        if (job->given[i] == p)
            return 1;
    }
    return 0;
}

static void *free_given_then_allocate(void *arg)
{
    struct remote_job *job = arg;
    void *own[REMOTE_OWN];
    int i;
    free(job->given[0]);
    if (job->misuse == REMOTE_TWICE_AT_ONCE)
        free(job->given[0]);
    for (i = 1; i < REMOTE_N; i++)
        free(job->given[i]);
    if (job->misuse == REMOTE_TWICE_AFTER_ALL)
        free(job->given[0]);
    for (i = 0; i < REMOTE_OWN; i++) {
        own[i] = malloc(tu_opaque(REMOTE_SIZE));
        ck_assert_ptr_nonnull(own[i]);
        memset(own[i], 0x5a, REMOTE_SIZE);
        job->reused += is_given(job, own[i]);
    }
    for (i = 0; i < REMOTE_OWN; i++)
        free(own[i]);
    return NULL;
}

static int quarantine_on(void)
{
    const char *options = getenv("CMALLOC_OPTIONS"), *hardened = getenv("CMALLOC_HARDENED");
    return TU_UNDER_VALGRIND() || (options && strstr(options, "hardened=on")) ||
           (hardened && strcmp(hardened, "0") != 0 && strcmp(hardened, "off") != 0);
}

static struct remote_job *run_remote_job(enum remote_misuse misuse)
{
    static struct remote_job job;
    pthread_t t;
    int i;
    ck_assert_int_eq(mallopt(M_ARENA_MAX, 8), 1);
    memset(&job, 0, sizeof job);
    job.misuse = misuse;
    for (i = 0; i < REMOTE_N; i++) {
        job.given[i] = malloc(tu_opaque(REMOTE_SIZE));
        ck_assert_ptr_nonnull(job.given[i]);
        memset(job.given[i], i, REMOTE_SIZE);
    }
    ck_assert_int_eq(pthread_create(&t, NULL, free_given_then_allocate, &job), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    return &job;
}

START_TEST(test_realloc_within_run)
{
    /* Blocks of 16 KiB and more have a run each: realloc to any size the
     * run's pages hold keeps the block where it is, both ways, and the
     * accounting follows it. */
    size_t before = heap_in_use(), mid;
    unsigned char *p = malloc(tu_opaque(40 * KiB)), *q;
    size_t i;
    ck_assert_ptr_nonnull(p);
    for (i = 0; i < 40 * KiB; i++)
        p[i] = (unsigned char)(i * 7);
    q = realloc(p, tu_opaque(60 * KiB));
    ck_assert_ptr_nonnull(q);
    if (!quarantine_on())
        ck_assert_ptr_eq(q, p);
    ck_assert_uint_ge(malloc_usable_size(q), 60 * KiB);
    for (i = 0; i < 40 * KiB; i++)
        ck_assert_uint_eq(q[i], (unsigned char)(i * 7));
    memset(q + 40 * KiB, 0xee, 20 * KiB);
    mid = heap_in_use();
    ck_assert_msg(mid >= before + 60 * KiB, "in use %zu -> %zu", before, mid);
    p = realloc(q, tu_opaque(33 * KiB));
    ck_assert_ptr_nonnull(p);
    if (!quarantine_on())
        ck_assert_ptr_eq(p, q);
    for (i = 0; i < 33 * KiB; i++)
        ck_assert_uint_eq(p[i], (unsigned char)(i * 7));
    q = realloc(p, tu_opaque(100 * KiB)); /* a larger run: moves */
    ck_assert_ptr_nonnull(q);
    for (i = 0; i < 33 * KiB; i++)
        ck_assert_uint_eq(q[i], (unsigned char)(i * 7));
    free(q);
    if (!quarantine_on())
        ck_assert_msg(heap_in_use() <= before + 4 * KiB,
                      "in use %zu after all was freed (was %zu)", heap_in_use(), before);
}
END_TEST

START_TEST(test_remote_free_goes_home)
{
    struct remote_job *job = run_remote_job(REMOTE_NO_MISUSE);
    void *again[REMOTE_N];
    int i, back = 0;
    ck_assert_msg(job->reused == 0, "the freeing thread got %d of the other arena's blocks",
                  job->reused);
    for (i = 0; i < REMOTE_N; i++) {
        again[i] = malloc(tu_opaque(REMOTE_SIZE));
        ck_assert_ptr_nonnull(again[i]);
        back += is_given(job, again[i]);
    }
    /* Hardened mode and Valgrind hold freed blocks in a quarantine first. */
    if (!quarantine_on())
        ck_assert_msg(back >= REMOTE_N / 2, "only %d of %d blocks came back to their arena",
                      back, REMOTE_N);
    for (i = 0; i < REMOTE_N; i++)
        free(again[i]);
}
END_TEST

START_TEST(test_remote_double_free_at_once)
{
    run_remote_job(REMOTE_TWICE_AT_ONCE);
}
END_TEST

START_TEST(test_remote_double_free_after_handback)
{
    run_remote_job(REMOTE_TWICE_AFTER_ALL);
}
END_TEST

START_TEST(test_remote_double_free_by_owner)
{
    struct remote_job *job = run_remote_job(REMOTE_NO_MISUSE);
    free(job->given[REMOTE_N / 2]);
}
END_TEST

START_TEST(test_remote_free_accounting)
{
    /* Blocks on their way back still count as free in mallinfo2. */
    size_t before = heap_in_use(), after;
    run_remote_job(REMOTE_NO_MISUSE);
    after = heap_in_use();
    ck_assert_msg(after <= before + 2048, "in use went from %zu to %zu", before, after);
}
END_TEST

START_TEST(test_version)
{
    char composed[64];
    ck_assert_ptr_nonnull(cmalloc_version());
    ck_assert_str_eq(cmalloc_version(), CMALLOC_VERSION_STRING);
    ck_assert_str_eq(CMALLOC_VERSION_STRING, EXPECTED_VERSION);
    snprintf(composed, sizeof composed, "%d.%d.%d", CMALLOC_VERSION_MAJOR,
             CMALLOC_VERSION_MINOR, CMALLOC_VERSION_PATCH);
    ck_assert_str_eq(composed, CMALLOC_VERSION_STRING);
}
END_TEST
#endif /* CMT_CMALLOC */

/* ------------------------------------------------------------------ */

static TCase *new_tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tc;
}

#if CMT_CMALLOC
static int check_runs_in_one_process(void)
{
    const char *mode = getenv("CK_FORK");
    return mode && strcmp(mode, "no") == 0;
}
#endif

static Suite *api_suite(void)
{
    Suite *s = suite_create(CMT_CMALLOC ? "cmalloc-api" : "glibc-reference");
    TCase *tc;

    tc = new_tcase(s, "malloc");
    tcase_add_test(tc, test_served_by_library);
    tcase_add_test(tc, test_malloc_zero);
    tcase_add_test(tc, test_alignment_usable_writable);
    tcase_add_test(tc, test_live_blocks_distinct);
    tcase_add_test(tc, test_free_null);
    tcase_add_test(tc, test_free_preserves_errno);
    tcase_add_test(tc, test_size_ladder_distinct);

    tc = new_tcase(s, "calloc");
    tcase_add_test(tc, test_calloc_zeroes_fresh);
    tcase_add_test(tc, test_calloc_zeroes_reused);
    tcase_add_test(tc, test_calloc_overflow);
    tcase_add_test(tc, test_reallocarray);

    tc = new_tcase(s, "impossible");
    tcase_add_test(tc, test_impossible_sizes);

    tc = new_tcase(s, "aligned");
    tcase_add_test(tc, test_posix_memalign_einval);
    tcase_add_test(tc, test_posix_memalign_pow2);
    tcase_add_test(tc, test_memalign_aligned_alloc_pow2);
    tcase_add_test(tc, test_memalign_non_pow2);
    tcase_add_test(tc, test_memalign_absurd_alignment);
    tcase_add_test(tc, test_valloc);
    tcase_add_test(tc, test_pvalloc);

    tc = new_tcase(s, "realloc");
    tcase_add_test(tc, test_realloc_zero_frees);
    tcase_add_test(tc, test_realloc_null_is_malloc);
    tcase_add_test(tc, test_realloc_preserves);
    tcase_add_test(tc, test_realloc_failure_keeps_block);

    tc = new_tcase(s, "introspection");
    tcase_add_test(tc, test_mallopt_supported);
    tcase_add_test(tc, test_mallopt_unsupported);
    tcase_add_test(tc, test_malloc_trim);
    tcase_add_test(tc, test_mallinfo2_accounting);
    tcase_add_test(tc, test_mallinfo_matches_mallinfo2);
    tcase_add_test(tc, test_malloc_stats_layout);
    tcase_add_test(tc, test_malloc_info_xml);
    tcase_add_test(tc, test_malloc_info_bad_options);

    tc = new_tcase(s, "aliases");
    tcase_add_test(tc, test_libc_aliases);
#if CMT_CMALLOC
    tcase_add_test(tc, test_other_aliases);
    tcase_add_test(tc, test_free_sized);

    tc = new_tcase(s, "cmalloc");
    tcase_add_test(tc, test_owns_live);
    tcase_add_test(tc, test_owns_foreign);
    tcase_add_test(tc, test_owns_freed);
    tcase_add_test(tc, test_owns_freed_other_thread);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_realloc_within_run);

    tc = new_tcase(s, "remote-free");
    tcase_add_test(tc, test_remote_free_goes_home);
    tcase_add_test(tc, test_remote_free_accounting);
    /* An abort ends the whole run unless each test has a process of its
     * own (not so under memcheck.sh). */
    if (!check_runs_in_one_process()) {
        tcase_add_test_raise_signal(tc, test_remote_double_free_at_once, SIGABRT);
        tcase_add_test_raise_signal(tc, test_remote_double_free_after_handback, SIGABRT);
        tcase_add_test_raise_signal(tc, test_remote_double_free_by_owner, SIGABRT);
    }
#endif
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(api_suite());
    int failed;
    srunner_run_all(sr, CK_ENV);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
