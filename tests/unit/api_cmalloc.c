/* cmalloc's own API and behaviour, in unit_api only: cmalloc_owns (live,
 * foreign, freed and freed-by-another-thread blocks), the version, and
 * realloc within a large block's run (see api.h for the two builds). */
#include "api.h"

#if CMT_CMALLOC

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


/* ------------------------------------------------------------------ */
/* Zero-size blocks: a unique address each, in memory never accessible */

enum { ZERO_WAYS = 8 };

/* The way-th request of 0 bytes, and the alignment it asked for. */
static void *zero_request(int way, size_t *align)
{
    void *p = NULL;
    *align = 16;
    switch (way) {
    case 0: p = malloc(tu_opaque(0)); break;
    case 1: p = calloc(tu_opaque(0), 8); break;
    case 2: p = calloc(8, tu_opaque(0)); break;
    case 3: p = realloc(NULL, tu_opaque(0)); break;
    case 4: *align = 64; p = memalign(64, tu_opaque(0)); break;
    case 5: *align = 4096; p = aligned_alloc(4096, tu_opaque(0)); break;
    case 6:
        *align = 32;
        ck_assert_int_eq(posix_memalign(&p, 32, tu_opaque(0)), 0);
        break;
    case 7: *align = page_size(); p = valloc(tu_opaque(0)); break;
    }
    return p;
}

static int cmp_addr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
    return x < y ? -1 : x > y;
}

/* Hardened mode checks blocks by the sizes it records, not by the sizes
 * free_sized is given. */
static int zero_sized_frees_checked(void)
{
    const char *opts = getenv("CMALLOC_OPTIONS");
    return !(opts && strstr(opts, "hardened=on"));
}

START_TEST(test_zero_size_blocks)
{
    enum { N = 64 };
    void *v[ZERO_WAYS * N];
    size_t align;
    for (int way = 0; way < ZERO_WAYS; way++) {
        for (int i = 0; i < N; i++) {
            void *p = v[way * N + i] = zero_request(way, &align);
            ck_assert_msg(p != NULL, "zero-size request %d returned NULL", way);
            ck_assert_aligned(p, align);
            ck_assert(cmalloc_owns(p));
            ck_assert_uint_eq(malloc_usable_size(p), 0);
        }
    }
    qsort(v, ZERO_WAYS * N, sizeof v[0], cmp_addr);
    for (int i = 1; i < ZERO_WAYS * N; i++)
        ck_assert_msg(v[i] != v[i - 1], "%p handed out twice", v[i]);
    for (int i = 0; i < ZERO_WAYS * N; i++) {
        free(v[i]);
        ck_assert(!cmalloc_owns(v[i]));
    }
}
END_TEST

/* A freed zero-size address does not come straight back. */
START_TEST(test_zero_size_not_reused_at_once)
{
    void *p = malloc(tu_opaque(0));
    free(p);
    void *q = malloc(tu_opaque(0));
    ck_assert_ptr_ne(p, q);
    free(q);
}
END_TEST

START_TEST(test_zero_size_realloc)
{
    char *p = malloc(tu_opaque(0));
    char *q = realloc(p, tu_opaque(100));
    ck_assert_ptr_nonnull(q);
    ck_assert(!cmalloc_owns(p));
    ck_assert_uint_ge(malloc_usable_size(q), 100);
    memset(q, 1, 100);
    free(q);
    p = malloc(tu_opaque(0));
    errno = 0;
    ck_assert_ptr_null(realloc(p, tu_opaque(0)));
    ck_assert(!cmalloc_owns(p));
    p = aligned_alloc(256, tu_opaque(0));
    q = realloc(p, tu_opaque(3 * MiB));
    ck_assert_ptr_nonnull(q);
    ck_assert(!cmalloc_owns(p));
    free(q);
    p = malloc(tu_opaque(0));
    free_sized(p, 0);
    ck_assert(!cmalloc_owns(p));
}
END_TEST

START_TEST(test_zero_size_read_faults)
{
    volatile char *p = malloc(tu_opaque(0));
    char c = p[0];
    (void)c;
}
END_TEST

START_TEST(test_zero_size_write_faults)
{
    volatile char *p = calloc(tu_opaque(1), tu_opaque(0));
    p[0] = 1;
}
END_TEST

START_TEST(test_zero_size_double_free)
{
    void *p = malloc(tu_opaque(0));
    free(p);
    free(p);
}
END_TEST

START_TEST(test_zero_size_free_after_realloc)
{
    void *p = malloc(tu_opaque(0));
    free(realloc(p, tu_opaque(64)));
    free(p);
}
END_TEST

START_TEST(test_zero_size_interior_free)
{
    char *p = malloc(tu_opaque(0));
    free(p + 8);
}
END_TEST

START_TEST(test_zero_size_usable_after_free)
{
    void *p = malloc(tu_opaque(0));
    free(p);
    (void)malloc_usable_size(p);
}
END_TEST

START_TEST(test_zero_size_free_sized_wrong)
{
    void *p = malloc(tu_opaque(0));
    free_sized(p, 8);
}
END_TEST

/* ------------------------------------------------------------------ */

void api_cmalloc_tests(Suite *s)
{
    TCase *tc;

    tc = api_tcase(s, "cmalloc");
    tcase_add_test(tc, test_owns_live);
    tcase_add_test(tc, test_owns_foreign);
    tcase_add_test(tc, test_owns_freed);
    tcase_add_test(tc, test_owns_freed_other_thread);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_realloc_within_run);
    tcase_add_test(tc, test_zero_size_blocks);
    tcase_add_test(tc, test_zero_size_not_reused_at_once);
    tcase_add_test(tc, test_zero_size_realloc);
    if (!check_runs_in_one_process()) {
        tcase_add_test_raise_signal(tc, test_zero_size_read_faults, SIGSEGV);
        tcase_add_test_raise_signal(tc, test_zero_size_write_faults, SIGSEGV);
        tcase_add_test_raise_signal(tc, test_zero_size_double_free, SIGABRT);
        tcase_add_test_raise_signal(tc, test_zero_size_free_after_realloc, SIGABRT);
        tcase_add_test_raise_signal(tc, test_zero_size_interior_free, SIGABRT);
        tcase_add_test_raise_signal(tc, test_zero_size_usable_after_free, SIGABRT);
        if (zero_sized_frees_checked())
            tcase_add_test_raise_signal(tc, test_zero_size_free_sized_wrong, SIGABRT);
    }
}

#endif /* CMT_CMALLOC */
