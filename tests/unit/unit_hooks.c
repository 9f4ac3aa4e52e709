/* The hooks API of <cmalloc.h>: which events are reported and with what,
 * registration and its errors, hooks that allocate, threads, fork and
 * sampling. Linked against the shared library.
 *
 * Check's assertions allocate (they report their position to the runner),
 * so none runs while a hook that counts events is installed: results are
 * kept and asserted after the hook is removed. */
#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmalloc.h"
#include "testutil.h"
#include "validate_hook.h"

#define MAX_EVENTS 512

struct log {
    unsigned n;
    struct cmalloc_event ev[MAX_EVENTS];
};

static void record(const struct cmalloc_event *ev, void *arg)
{
    struct log *log = arg;
    if (log->n < MAX_EVENTS)
        log->ev[log->n] = *ev;
    log->n++;
}

static void other_hook(const struct cmalloc_event *ev, void *arg)
{
    (void)ev;
    (void)arg;
}

static const struct cmalloc_event *expect(struct log *log, unsigned i, enum cmalloc_event_type type,
                                          enum cmalloc_function fn, void *ptr)
{
    ck_assert_uint_gt(log->n, i);
    const struct cmalloc_event *ev = &log->ev[i];
    ck_assert_int_eq(ev->type, type);
    ck_assert_int_eq(ev->function, fn);
    ck_assert_ptr_eq(ev->ptr, ptr);
    return ev;
}

START_TEST(test_every_call_reported)
{
    static struct log log;
    log.n = 0;
    int installed = cmalloc_hook_install(record, &log, 0);
    char *p = malloc(100);
    char *c = calloc(3, 50);
    void *m = NULL;
    int aligned = posix_memalign(&m, 256, 40);
    char *h = malloc(8 * MiB);
    memset(p, 7, 100);
    char *r = realloc(p, 5000);
    free(c);
    free(m);
    free(h);
    free(r);
    int removed = cmalloc_hook_remove(record, &log);
    ck_assert_int_eq(installed, 0);
    ck_assert_int_eq(removed, 0);
    ck_assert_int_eq(aligned, 0);

    ck_assert_uint_eq(log.n, 9);
    const struct cmalloc_event *ev = expect(&log, 0, CMALLOC_EVENT_ALLOC, CMALLOC_FN_MALLOC, p);
    ck_assert_uint_eq(ev->size, 100);
    ck_assert_uint_ge(ev->usable, 100);
    ck_assert_uint_eq(ev->weight, 100);
    ev = expect(&log, 1, CMALLOC_EVENT_ALLOC, CMALLOC_FN_CALLOC, c);
    ck_assert_uint_eq(ev->size, 150);
    ev = expect(&log, 2, CMALLOC_EVENT_ALLOC, CMALLOC_FN_MEMALIGN, m);
    ck_assert_uint_eq(ev->alignment, 256);
    ck_assert_uint_eq(ev->size, 40);
    ev = expect(&log, 3, CMALLOC_EVENT_ALLOC, CMALLOC_FN_MALLOC, h);
    ck_assert_uint_eq(ev->size, 8 * MiB);
    ev = expect(&log, 4, CMALLOC_EVENT_REALLOC, CMALLOC_FN_REALLOC, r);
    ck_assert_ptr_eq(ev->old_ptr, p);
    ck_assert_uint_eq(ev->size, 5000);
    ck_assert_uint_ge(ev->old_usable, 100);
    ck_assert_uint_ge(ev->usable, 5000);
    expect(&log, 5, CMALLOC_EVENT_FREE, CMALLOC_FN_FREE, c);
    expect(&log, 6, CMALLOC_EVENT_FREE, CMALLOC_FN_FREE, m);
    ev = expect(&log, 7, CMALLOC_EVENT_FREE, CMALLOC_FN_FREE, h);
    ck_assert_uint_ge(ev->size, 8 * MiB);
    expect(&log, 8, CMALLOC_EVENT_FREE, CMALLOC_FN_FREE, r);
}
END_TEST

START_TEST(test_realloc_edges_reported)
{
    static struct log log;
    log.n = 0;
    void *before = malloc(64);
    int installed = cmalloc_hook_install(record, &log, 0);
    void *p = realloc(NULL, 10);
    /* A block from before the hook: its replacement is an allocation. */
    void *q = realloc(before, 3000);
    void *gone = realloc(p, 0);
    free(q);
    int removed = cmalloc_hook_remove(record, &log);
    ck_assert_int_eq(installed, 0);
    ck_assert_int_eq(removed, 0);
    ck_assert_ptr_null(gone);

    ck_assert_uint_eq(log.n, 4);
    expect(&log, 0, CMALLOC_EVENT_ALLOC, CMALLOC_FN_REALLOC, p);
    expect(&log, 1, CMALLOC_EVENT_ALLOC, CMALLOC_FN_REALLOC, q);
    expect(&log, 2, CMALLOC_EVENT_FREE, CMALLOC_FN_REALLOC, p);
    expect(&log, 3, CMALLOC_EVENT_FREE, CMALLOC_FN_FREE, q);
}
END_TEST

/* A reported buffer grown a little at a time: an event only when its
 * usable size changes, and the events always lead to where it is. */
START_TEST(test_realloc_growth_followed)
{
    static struct log log;
    log.n = 0;
    int installed = cmalloc_hook_install(record, &log, 0);
    char *p = malloc(2 * MiB);
    for (size_t i = 1; i <= 300; i++) {
        p = realloc(p, 2 * MiB + i * 4096);
        if (!p)
            break;
        p[2 * MiB + i * 4096 - 1] = 1;
    }
    void *last = p;
    free(p);
    int removed = cmalloc_hook_remove(record, &log);
    ck_assert_int_eq(installed, 0);
    ck_assert_int_eq(removed, 0);
    ck_assert_ptr_nonnull(last);
    ck_assert_uint_le(log.n, MAX_EVENTS);
    if (!TU_UNDER_VALGRIND())
        ck_assert_uint_lt(log.n, 40);
    void *live = NULL;
    for (unsigned i = 0; i < log.n; i++) {
        const struct cmalloc_event *ev = &log.ev[i];
        if (ev->type == CMALLOC_EVENT_ALLOC) {
            ck_assert_ptr_null(live);
            live = ev->ptr;
        } else {
            ck_assert_ptr_eq(ev->type == CMALLOC_EVENT_FREE ? ev->ptr : ev->old_ptr, live);
            live = ev->type == CMALLOC_EVENT_FREE ? NULL : ev->ptr;
        }
    }
    ck_assert_ptr_null(live);
    ck_assert_int_eq(log.ev[log.n - 1].type, CMALLOC_EVENT_FREE);
    ck_assert_ptr_eq(log.ev[log.n - 1].ptr, last);
}
END_TEST

START_TEST(test_registration_errors)
{
    static struct log log;
    ck_assert_int_eq(cmalloc_hook_install(NULL, NULL, 0), EINVAL);
    ck_assert_int_eq(cmalloc_hook_remove(record, &log), ENOENT);
    ck_assert_int_eq(cmalloc_hook_install(record, &log, 4096), 0);
    ck_assert_int_eq(cmalloc_hook_install(record, &log, 4096), EEXIST);
    ck_assert_int_eq(cmalloc_hook_install(other_hook, NULL, 0), EBUSY);
    static int args[CMALLOC_MAX_HOOKS];
    for (int i = 1; i < CMALLOC_MAX_HOOKS; i++)
        ck_assert_int_eq(cmalloc_hook_install(other_hook, &args[i], 4096), 0);
    ck_assert_int_eq(cmalloc_hook_install(other_hook, &args[0], 4096), ENOSPC);
    for (int i = 1; i < CMALLOC_MAX_HOOKS; i++)
        ck_assert_int_eq(cmalloc_hook_remove(other_hook, &args[i]), 0);
    ck_assert_int_eq(cmalloc_hook_remove(record, &log), 0);
    ck_assert_int_eq(cmalloc_hook_remove(record, &log), ENOENT);
    /* With none left, any interval goes. */
    ck_assert_int_eq(cmalloc_hook_install(other_hook, NULL, 0), 0);
    ck_assert_int_eq(cmalloc_hook_remove(other_hook, NULL), 0);
}
END_TEST

START_TEST(test_only_reported_blocks_report_free)
{
    static struct log log;
    log.n = 0;
    void *before = malloc(200);
    int installed = cmalloc_hook_install(record, &log, 0);
    free(before);
    void *during = malloc(300);
    void *during_huge = malloc(6 * MiB);
    int removed = cmalloc_hook_remove(record, &log);
    ck_assert_int_eq(installed, 0);
    ck_assert_int_eq(removed, 0);
    ck_assert_uint_eq(log.n, 2);
    /* Freed, resized and reused after the hook is gone: no events, and
     * the blocks behave as any other. */
    size_t usable = malloc_usable_size(during);
    during = realloc(during, 100000);
    bool resized = during != NULL;
    free(during);
    free(during_huge);
    for (int i = 0; i < 1000; i++)
        free(malloc(300));
    ck_assert_uint_eq(log.n, 2);
    ck_assert_uint_ge(usable, 300);
    ck_assert(resized);
}
END_TEST

/* A hook that allocates, frees and resizes memory itself. */
static unsigned nested_calls;

static void allocating_hook(const struct cmalloc_event *ev, void *arg)
{
    (void)arg;
    if (ev->type != CMALLOC_EVENT_ALLOC)
        return;
    nested_calls++;
    char *a = malloc(ev->size + 1);
    char *b = calloc(4, 32);
    a = realloc(a, 10000);
    void *c = NULL;
    if (posix_memalign(&c, 64, 64) == 0)
        free(c);
    free(a);
    free(b);
    free(malloc(2 * MiB));
}

START_TEST(test_hook_may_allocate)
{
    nested_calls = 0;
    int installed = cmalloc_hook_install(allocating_hook, NULL, 0);
    for (int i = 0; i < 100; i++)
        free(malloc((size_t)i * 40));
    int removed = cmalloc_hook_remove(allocating_hook, NULL);
    ck_assert_int_eq(installed, 0);
    ck_assert_int_eq(removed, 0);
    ck_assert_uint_eq(nested_calls, 100);
}
END_TEST

static void self_removing_hook(const struct cmalloc_event *ev, void *arg)
{
    (void)ev;
    unsigned *calls = arg;
    if (++*calls == 3 && cmalloc_hook_remove(self_removing_hook, arg) != 0)
        abort();
}

START_TEST(test_hook_removes_itself)
{
    static unsigned calls;
    ck_assert_int_eq(cmalloc_hook_install(self_removing_hook, &calls, 0), 0);
    for (int i = 0; i < 10; i++)
        free(malloc(50));
    ck_assert_uint_eq(calls, 3);
}
END_TEST

/* ---- threads ---- */

struct counts {
    unsigned long allocs, frees;
    unsigned long alloc_bytes, free_bytes;
};

/* Only what the churning threads do counts: thread creation allocates too
 * (glibc's per-thread structures), and keeps that until the stack is
 * reused. Hooks run on the thread that allocates, so a thread-local flag
 * tells them apart. An int, not a bool: on i386 a lone one-byte variable
 * lands at %gs:0xffffffff, which Valgrind 3.19 takes for an access beyond
 * the segment limit (a fault that native runs never see). */
static __thread int churning;

static void counting_hook(const struct cmalloc_event *ev, void *arg)
{
    struct counts *c = arg;
    if (!churning)
        return;
    if (ev->type == CMALLOC_EVENT_ALLOC) {
        __atomic_fetch_add(&c->allocs, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&c->alloc_bytes, ev->usable, __ATOMIC_RELAXED);
    } else if (ev->type == CMALLOC_EVENT_FREE) {
        __atomic_fetch_add(&c->frees, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&c->free_bytes, ev->size, __ATOMIC_RELAXED);
    }
}

#define NTHREADS 4

static void *churn(void *arg)
{
    uint64_t rng = tu_seed((uint64_t)(uintptr_t)arg, 99);
    void *slots[64] = {0};
    churning = true;
    for (int i = 0; i < 20000; i++) {
        unsigned k = (unsigned)(tu_rand(&rng) % 64);
        free(slots[k]);
        size_t size = tu_rand(&rng) % 8 == 0 ? tu_rand(&rng) % 300000 : tu_rand(&rng) % 600;
        slots[k] = malloc(size);
        TU_CHECK(slots[k] != NULL, "malloc(%zu)", size);
        memset(slots[k], 0x5a, size);
    }
    for (int k = 0; k < 64; k++)
        free(slots[k]);
    churning = false;
    return NULL;
}

static void run_threads(void)
{
    pthread_t t[NTHREADS];
    for (uintptr_t i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, churn, (void *)i), 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
}

START_TEST(test_threads_balanced)
{
    static struct counts c;
    int installed = cmalloc_hook_install(counting_hook, &c, 0);
    run_threads();
    int removed = cmalloc_hook_remove(counting_hook, &c);
    ck_assert_int_eq(installed, 0);
    ck_assert_int_eq(removed, 0);
    ck_assert_uint_ge(c.allocs, NTHREADS * 20000);
    ck_assert_uint_eq(c.allocs, c.frees);
    ck_assert_uint_eq(c.alloc_bytes, c.free_bytes);
}
END_TEST

static bool toggling_done;

static void *toggle(void *arg)
{
    while (!__atomic_load_n(&toggling_done, __ATOMIC_ACQUIRE)) {
        TU_CHECK(cmalloc_hook_install(counting_hook, arg, 0) == 0, "install");
        usleep(200);
        TU_CHECK(cmalloc_hook_remove(counting_hook, arg) == 0, "remove");
    }
    return NULL;
}

START_TEST(test_threads_with_install_and_remove)
{
    static struct counts c;
    pthread_t toggler;
    ck_assert_int_eq(pthread_create(&toggler, NULL, toggle, &c), 0);
    run_threads();
    __atomic_store_n(&toggling_done, true, __ATOMIC_RELEASE);
    pthread_join(toggler, NULL);
    ck_assert_uint_gt(c.allocs, 0);
    ck_assert_uint_le(c.frees, c.allocs);
}
END_TEST

START_TEST(test_fork_with_hook)
{
    static struct counts c;
    ck_assert_int_eq(cmalloc_hook_install(counting_hook, &c, 0), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        unsigned long before = c.allocs;
        run_threads();
        _exit(c.allocs > before && c.frees > 0 &&
                      cmalloc_hook_remove(counting_hook, &c) == 0
                  ? 0
                  : 1);
    }
    free(malloc(10));
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert_int_eq(cmalloc_hook_remove(counting_hook, &c), 0);
}
END_TEST

/* ---- sampling ---- */

struct samples {
    unsigned long n;
    double weight;
    unsigned long frees;
};

static void sampling_hook(const struct cmalloc_event *ev, void *arg)
{
    struct samples *s = arg;
    if (ev->type == CMALLOC_EVENT_FREE) {
        s->frees++;
        return;
    }
    s->n++;
    s->weight += (double)ev->weight;
}

START_TEST(test_sampling_small_blocks)
{
    /* 64 MiB in 64-byte blocks at one sample per 64 KiB: 1024 samples
     * expected (Poisson, sd 32), and weights that add up to about the
     * bytes allocated. */
    static struct samples s;
    const size_t interval = 64 * KiB, total = 64 * MiB, size = 64;
    int installed = cmalloc_hook_install(sampling_hook, &s, interval);
    for (size_t done = 0; done < total; done += size)
        free(tu_opaque_ptr(malloc(size)));
    int removed = cmalloc_hook_remove(sampling_hook, &s);
    ck_assert_int_eq(installed, 0);
    ck_assert_int_eq(removed, 0);
    ck_assert_msg(s.n > 800 && s.n < 1250, "%lu samples, expected about 1024", s.n);
    ck_assert_uint_eq(s.frees, s.n);
    double ratio = s.weight / (double)total;
    ck_assert_msg(ratio > 0.8 && ratio < 1.25, "weights sum to %.3f of the bytes allocated", ratio);
}
END_TEST

START_TEST(test_sampling_large_blocks)
{
    /* A block 16 times the interval is all but certain to be sampled, and
     * stands for its own size. */
    static struct samples s;
    int installed = cmalloc_hook_install(sampling_hook, &s, 64 * KiB);
    for (int i = 0; i < 100; i++)
        free(tu_opaque_ptr(malloc(MiB)));
    int removed = cmalloc_hook_remove(sampling_hook, &s);
    ck_assert_int_eq(installed, 0);
    ck_assert_int_eq(removed, 0);
    ck_assert_uint_ge(s.n, 99);
    ck_assert_msg(s.weight / s.n > 0.99 * MiB && s.weight / s.n < 1.01 * MiB,
                  "mean weight %.0f for 1 MiB blocks", s.weight / s.n);
}
END_TEST

static Suite *hooks_suite(void)
{
    Suite *s = suite_create("hooks");
    TCase *tc = tcase_create("events");
    tcase_add_checked_fixture(tc, NULL, tu_validate_heap);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tcase_add_test(tc, test_every_call_reported);
    tcase_add_test(tc, test_realloc_edges_reported);
    tcase_add_test(tc, test_realloc_growth_followed);
    tcase_add_test(tc, test_registration_errors);
    tcase_add_test(tc, test_only_reported_blocks_report_free);
    tcase_add_test(tc, test_hook_may_allocate);
    tcase_add_test(tc, test_hook_removes_itself);

    tc = tcase_create("threads");

    tcase_add_checked_fixture(tc, NULL, tu_validate_heap);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tcase_add_test(tc, test_threads_balanced);
    tcase_add_test(tc, test_threads_with_install_and_remove);
    tcase_add_test(tc, test_fork_with_hook);

    tc = tcase_create("sampling");

    tcase_add_checked_fixture(tc, NULL, tu_validate_heap);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tcase_add_test(tc, test_sampling_small_blocks);
    tcase_add_test(tc, test_sampling_large_blocks);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hooks_suite());
    srunner_run_all(sr, CK_ENV);
    tu_validate_heap();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
