/* The other names of the malloc family: glibc's __libc_* aliases, and for
 * cmalloc __posix_memalign, cfree, free_sized and free_aligned_sized (see
 * api.h for the two builds). */
#include "api.h"

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

/* A size that does not name the block's class is the caller's bug: free
 * aborts instead of filing the block under the wrong size. A size of the
 * same class is what free_sized may get for a block grown in place. */
START_TEST(test_free_sized_same_class)
{
    void *p = malloc(tu_opaque(100));
    ck_assert_ptr_nonnull(p);
    free_sized(p, 97);
    p = malloc(tu_opaque(3 * MiB));
    ck_assert_ptr_nonnull(p);
    free_sized(p, 3 * MiB - 4096);
}
END_TEST

START_TEST(test_free_sized_wrong_small)
{
    void *p = malloc(tu_opaque(100));
    free_sized(p, 5000);
}
END_TEST

START_TEST(test_free_sized_wrong_huge)
{
    void *p = malloc(tu_opaque(2 * MiB));
    free_sized(p, 3 * MiB);
}
END_TEST

START_TEST(test_free_aligned_sized_wrong)
{
    void *p = aligned_alloc(tu_opaque(64), tu_opaque(128));
    free_aligned_sized(p, 64, 1000);
}
END_TEST

/* Hardened mode checks blocks by the sizes it records, not by the sizes
 * free_sized is given. */
static int sized_frees_checked(void)
{
    const char *opts = getenv("CMALLOC_OPTIONS");
    return !(opts && strstr(opts, "hardened=on"));
}
#endif /* CMT_CMALLOC */

/* ------------------------------------------------------------------ */

void api_aliases_tests(Suite *s)
{
    TCase *tc;

    tc = api_tcase(s, "aliases");
    tcase_add_test(tc, test_libc_aliases);
#if CMT_CMALLOC
    tcase_add_test(tc, test_other_aliases);
    tcase_add_test(tc, test_free_sized);
    tcase_add_test(tc, test_free_sized_same_class);
    if (!check_runs_in_one_process() && sized_frees_checked()) {
        tcase_add_test_raise_signal(tc, test_free_sized_wrong_small, SIGABRT);
        tcase_add_test_raise_signal(tc, test_free_sized_wrong_huge, SIGABRT);
        tcase_add_test_raise_signal(tc, test_free_aligned_sized_wrong, SIGABRT);
    }
#endif
}
