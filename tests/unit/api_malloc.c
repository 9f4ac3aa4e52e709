/* The malloc family's basics: malloc and free (zero sizes, alignment and
 * usable size, distinct live blocks, free(NULL), errno), the size ladder,
 * calloc and reallocarray (zeroing, overflow), and the sizes no function
 * can ever serve (see api.h for the two builds). */
#include "api.h"

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
        {(size_t)1 << TU_HALF_BITS, (size_t)1 << TU_HALF_BITS},
        {((size_t)1 << TU_HALF_BITS) + 1, ((size_t)1 << TU_HALF_BITS) - 1},
        {SIZE_MAX / 16 + 1, 16},
        {3, SIZE_MAX / 3 + 1},
        {SIZE_MAX, 1},
        {1, SIZE_MAX},
        {(size_t)PTRDIFF_MAX + 1, 1},
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
            {SIZE_MAX / 2 + 1, 2}, {(size_t)1 << (TU_HALF_BITS + 1), (size_t)1 << (TU_HALF_BITS + 1)},
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

void api_malloc_tests(Suite *s)
{
    TCase *tc;

    tc = api_tcase(s, "malloc");
    tcase_add_test(tc, test_served_by_library);
    tcase_add_test(tc, test_malloc_zero);
    tcase_add_test(tc, test_alignment_usable_writable);
    tcase_add_test(tc, test_live_blocks_distinct);
    tcase_add_test(tc, test_free_null);
    tcase_add_test(tc, test_free_preserves_errno);
    tcase_add_test(tc, test_size_ladder_distinct);

    tc = api_tcase(s, "calloc");
    tcase_add_test(tc, test_calloc_zeroes_fresh);
    tcase_add_test(tc, test_calloc_zeroes_reused);
    tcase_add_test(tc, test_calloc_overflow);
    tcase_add_test(tc, test_reallocarray);

    tc = api_tcase(s, "impossible");
    tcase_add_test(tc, test_impossible_sizes);
}
