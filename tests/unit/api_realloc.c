/* realloc: realloc(p, 0), realloc(NULL, n), contents kept across sizes,
 * and a failed realloc that leaves the block alone (see api.h for the two
 * builds). */
#include "api.h"

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

void api_realloc_tests(Suite *s)
{
    TCase *tc;

    tc = api_tcase(s, "realloc");
    tcase_add_test(tc, test_realloc_zero_frees);
    tcase_add_test(tc, test_realloc_null_is_malloc);
    tcase_add_test(tc, test_realloc_preserves);
    tcase_add_test(tc, test_realloc_failure_keeps_block);
}
