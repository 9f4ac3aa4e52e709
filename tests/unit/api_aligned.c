/* Aligned allocation: posix_memalign, memalign, aligned_alloc, valloc and
 * pvalloc (see api.h for the two builds). */
#include "api.h"

static size_t next_pow2(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

/* ------------------------------------------------------------------ */
/* aligned allocation                                                  */

START_TEST(test_posix_memalign_einval)
{
    static const size_t bad[] = {0, 1, 2, 3, sizeof(void *) / 2, sizeof(void *) * 3, 12, 24, 40, 48,
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

/* A request that cannot be met returns ENOMEM, leaves *memptr alone and,
 * as glibc's does (tst-malloc-thread-fail relies on it), sets errno to
 * ENOMEM too; EINVAL leaves errno alone. */
START_TEST(test_posix_memalign_enomem_errno)
{
    /* All above PTRDIFF_MAX, which a 32-bit process can sometimes get. */
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 4096, SIZE_MAX / 2 + 1, SIZE_MAX / 4 * 3};
    size_t i;
    for (i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        void *sentinel = (void *)&huge[i];
        void *q = sentinel;
        int rc;
        errno = 0;
        rc = posix_memalign(&q, tu_opaque(64), tu_opaque(huge[i]));
        ck_assert_msg(rc == ENOMEM, "posix_memalign(64, %zu) returned %d, want ENOMEM", huge[i],
                      rc);
        ck_assert_msg(errno == ENOMEM, "posix_memalign(64, %zu): errno %d, want ENOMEM", huge[i],
                      errno);
        ck_assert_ptr_eq(q, sentinel);
    }
    {
        void *q = NULL;
        errno = 0;
        ck_assert_int_eq(posix_memalign(&q, tu_opaque(3), 64), EINVAL);
        ck_assert_int_eq(errno, 0);
        errno = 0;
        ck_assert_int_eq(posix_memalign(&q, tu_opaque(64), 64), 0);
        ck_assert_int_eq(errno, 0);
        free(q);
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
#if SIZE_MAX > UINT32_MAX
        /* beyond the 47-bit user space */
        errno = 0;
        p = memalign(tu_opaque((size_t)1 << 50), tu_opaque(1));
        ck_assert_ptr_null(p);
        ck_assert_int_eq(errno, ENOMEM);
#endif
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

void api_aligned_tests(Suite *s)
{
    TCase *tc;

    tc = api_tcase(s, "aligned");
    tcase_add_test(tc, test_posix_memalign_einval);
    tcase_add_test(tc, test_posix_memalign_enomem_errno);
    tcase_add_test(tc, test_posix_memalign_pow2);
    tcase_add_test(tc, test_memalign_aligned_alloc_pow2);
    tcase_add_test(tc, test_memalign_non_pow2);
    tcase_add_test(tc, test_memalign_absurd_alignment);
    tcase_add_test(tc, test_valloc);
    tcase_add_test(tc, test_pvalloc);
}
