/* The heap validator (src/validate.c) against a heap it must accept and
 * against the same heap with one field broken at a time.
 *
 * Linked against the static library, with src/ on the include path, so
 * that it can reach the structures (internal.h) and corrupt them. Built in
 * debug builds only (CMALLOC_DEBUG), where the validator exists.
 *
 * Every case starts from the same heap (the checked fixture): blocks of
 * several small classes with every other one freed, so that runs have free
 * lists and this thread's cache holds blocks; blocks of a multi-page class
 * and one-block runs; a huge block; and cross-thread frees both ways with a
 * worker thread on a second arena, which stays alive with a cache of its
 * own until the teardown, so that the thread's remote list and the
 * arenas' remote stacks are not empty. Each case breaks one field, runs
 * the validator, puts the field back before anything else touches the
 * heap, and checks that the validator failed and that its report names
 * the field; the teardown checks that the repaired heap validates again
 * once the worker has exited. The cases also run in-process (CK_FORK=no),
 * since they repair what they break. */
#define _GNU_SOURCE
#include <check.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "debug.h"

#if CM_DEBUG == 0
#error "validate_corrupt tests the heap validator, which only debug builds (CMALLOC_DEBUG) have"
#endif

#define NSIZES 5
#define NSMALL 600
static const size_t small_sizes[NSIZES] = {16, 48, 64, 100, 256};
static void *small[NSIZES][NSMALL];

#define NMEDIUM 24
#define MEDIUM_SIZE 3000 /* runs of several pages */
static void *medium[NMEDIUM];

#define NSINGLE 6
#define SINGLE_SIZE 20000 /* one block per run */
static void *single[NSINGLE];

#define HUGE_SIZE ((size_t)3 << 20)
static void *huge;

/* Cross-thread frees: the worker allocates these and this thread frees
 * them (this thread's remote list, then arena 1's remote stack) ... */
#define NFROM_WORKER 400
#define FROM_WORKER_SIZE 32
#define NFROM_WORKER_MEDIUM 40
#define FROM_WORKER_MEDIUM_SIZE 1000
static void *from_worker[NFROM_WORKER], *from_worker_medium[NFROM_WORKER_MEDIUM];
/* ... and this thread allocates these and the worker frees them (its
 * remote list, then arena 0's remote stack). This thread allocates no
 * more of their class afterwards, which would take the stack back. */
#define NTO_WORKER 300
#define TO_WORKER_SIZE 1500
static void *to_worker[NTO_WORKER];

static pthread_t worker_thread;
static pthread_mutex_t worker_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t worker_cond = PTHREAD_COND_INITIALIZER;
static int worker_phase; /* 1: done freeing, 2: may exit */

static void *worker(void *arg)
{
    (void)arg;
    void *own[20];
    for (size_t i = 0; i < NFROM_WORKER; i++)
        from_worker[i] = malloc(FROM_WORKER_SIZE);
    for (size_t i = 0; i < NFROM_WORKER_MEDIUM; i++)
        from_worker_medium[i] = malloc(FROM_WORKER_MEDIUM_SIZE);
    for (size_t i = 0; i < 20; i++)
        own[i] = malloc(80);
    for (size_t i = 0; i < 20; i++)
        free(own[i]);
    for (size_t i = 0; i < NTO_WORKER; i++)
        free(to_worker[i]);
    pthread_mutex_lock(&worker_lock);
    worker_phase = 1;
    pthread_cond_broadcast(&worker_cond);
    while (worker_phase != 2)
        pthread_cond_wait(&worker_cond, &worker_lock);
    pthread_mutex_unlock(&worker_lock);
    return NULL;
}

static void assert_heap_sound(const char *when)
{
    char why[512];
    bool ok = cm_heap_validate(why, sizeof why);
    ck_assert_msg(ok, "%s: the validator rejects a sound heap: %s", when, why);
}

static void build_heap(void)
{
    for (size_t k = 0; k < NSIZES; k++) {
        for (size_t i = 0; i < NSMALL; i++) {
            small[k][i] = malloc(small_sizes[k]);
            ck_assert_ptr_nonnull(small[k][i]);
            memset(small[k][i], 0x5a, small_sizes[k]);
        }
        for (size_t i = 1; i < NSMALL; i += 2) {
            free(small[k][i]);
            small[k][i] = NULL;
        }
    }
    for (size_t i = 0; i < NMEDIUM; i++)
        ck_assert_ptr_nonnull(medium[i] = malloc(MEDIUM_SIZE));
    for (size_t i = 0; i < NMEDIUM; i += 3) {
        free(medium[i]);
        medium[i] = NULL;
    }
    for (size_t i = 0; i < NSINGLE; i++)
        ck_assert_ptr_nonnull(single[i] = malloc(SINGLE_SIZE));
    for (size_t i = 0; i < NSINGLE; i += 2) {
        free(single[i]);
        single[i] = NULL;
    }
    ck_assert_ptr_nonnull(huge = malloc(HUGE_SIZE));

    for (size_t i = 0; i < NTO_WORKER; i++)
        ck_assert_ptr_nonnull(to_worker[i] = malloc(TO_WORKER_SIZE));
    worker_phase = 0;
    ck_assert_int_eq(pthread_create(&worker_thread, NULL, worker, NULL), 0);
    pthread_mutex_lock(&worker_lock);
    while (worker_phase != 1)
        pthread_cond_wait(&worker_cond, &worker_lock);
    pthread_mutex_unlock(&worker_lock);
    for (size_t i = 0; i < NFROM_WORKER; i++)
        free(from_worker[i]);
    for (size_t i = 0; i < NFROM_WORKER_MEDIUM; i++)
        free(from_worker_medium[i]);
}

static void setup(void)
{
    build_heap();
}

static void teardown(void)
{
    pthread_mutex_lock(&worker_lock);
    worker_phase = 2;
    pthread_cond_broadcast(&worker_cond);
    pthread_mutex_unlock(&worker_lock);
    pthread_join(worker_thread, NULL);
    for (size_t k = 0; k < NSIZES; k++)
        for (size_t i = 0; i < NSMALL; i++)
            free(small[k][i]);
    for (size_t i = 0; i < NMEDIUM; i++)
        free(medium[i]);
    for (size_t i = 0; i < NSINGLE; i++)
        free(single[i]);
    free(huge);
    memset(small, 0, sizeof small);
    memset(medium, 0, sizeof medium);
    memset(single, 0, sizeof single);
    huge = NULL;
    assert_heap_sound("after the teardown");
}

static struct cm_run *run_of(void *p)
{
    struct cm_block_info info = cm_locate(p);
    ck_assert_ptr_nonnull(info.segment);
    ck_assert_uint_ne(info.cls, 0);
    return cm_run_of_block(info.segment, p, info.cls);
}

/* After the heap was repaired: the validator must have failed, and named
 * the field in its one line. */
static void expect_report(const char *name, bool ok, const char *why, const char *field)
{
    ck_assert_msg(!ok, "%s: the validator accepts the corrupted heap", name);
    ck_assert_msg(strchr(why, '\n') == NULL, "%s: the report is more than one line: %s", name,
                  why);
    ck_assert_msg(strstr(why, field) != NULL, "%s: the report does not name \"%s\": %s", name,
                  field, why);
    printf("validate_corrupt: %s: %s\n", name, why);
    fflush(stdout);
    assert_heap_sound("after the repair");
}

START_TEST(test_sound_heap)
{
    unsigned c32 = cm_size_class(FROM_WORKER_SIZE), c1500 = cm_size_class(TO_WORKER_SIZE);
    ck_assert_uint_ge(cm_narenas, 2);
    /* The structures the other cases rely on, and the walk must cover. */
    ck_assert_ptr_nonnull(cm_arenas[1]->threads);
    ck_assert_msg(cm_tls.remote != NULL, "this thread's remote list is empty");
    ck_assert_msg(cm_arenas[1]->remote[c32] != NULL, "arena 1's remote stack is empty");
    ck_assert_msg(cm_arenas[0]->remote[c1500] != NULL, "arena 0's remote stack is empty");
    assert_heap_sound("the fixture's heap");
    ck_assert_int_eq(cmalloc_debug_validate(), 0);
    /* Running it changes nothing it checks. */
    assert_heap_sound("a second run");
}
END_TEST

START_TEST(test_corrupt_run_nfree)
{
    struct cm_run *r = run_of(small[1][0]);
    char why[512], tiny[16];
    r->nfree++;
    bool ok = cm_heap_validate(why, sizeof why);
    bool ok_tiny = cm_heap_validate(tiny, sizeof tiny);
    bool ok_none = cm_heap_validate(NULL, 0);
    int exported = cmalloc_debug_validate();
    r->nfree--;
    ck_assert(!ok_tiny && !ok_none);
    ck_assert_uint_eq(strlen(tiny), sizeof tiny - 1);
    ck_assert_msg(strncmp(why, tiny, sizeof tiny - 1) == 0, "truncated report differs");
    ck_assert_int_eq(exported, -1);
    expect_report("run nfree", ok, why, "nfree");
}
END_TEST

START_TEST(test_corrupt_free_list_link)
{
    struct cm_run *r = NULL;
    for (size_t i = 0; i < NSMALL && !r; i += 2) {
        struct cm_run *q = run_of(small[2][i]);
        if (q->free)
            r = q;
    }
    ck_assert_msg(r != NULL, "no run of %zu-byte blocks has a free list", small_sizes[2]);
    struct cm_block *b = r->free;
    uintptr_t saved = b->next_enc;
    b->next_enc = cm_link_encode((struct cm_block *)((char *)b + 8));
    char why[512];
    bool ok = cm_heap_validate(why, sizeof why);
    b->next_enc = saved;
    expect_report("free-list link", ok, why, "free-list link");
}
END_TEST

START_TEST(test_corrupt_page_cls)
{
    /* The last page of a run of several pages. */
    struct cm_run *r = run_of(medium[1]);
    ck_assert_uint_gt(r->order, 0);
    struct cm_segment *s = cm_run_segment(r);
    size_t page = cm_run_first_page(r) + ((size_t)1 << r->order) - 1;
    uint8_t saved = s->page_cls[page];
    s->page_cls[page] = (uint8_t)(saved + 1);
    char why[512];
    bool ok = cm_heap_validate(why, sizeof why);
    s->page_cls[page] = saved;
    expect_report("page_cls byte", ok, why, "page_cls");
}
END_TEST

/* The list of this thread's bin of class cls that holds two blocks or
 * more, whose first link the tests below bend. */
static struct cm_block *longer_list(unsigned cls)
{
    struct cm_block *lists[2] = {cm_tls.head[cls], cm_tls.freed[cls]};
    for (unsigned i = 0; i < 2; i++) {
        if (lists[i] && cm_link_decode(lists[i]->next_enc))
            return lists[i];
    }
    ck_abort_msg("this thread caches no two blocks of class %u on one list", cls);
    return NULL;
}

START_TEST(test_corrupt_tcache_link)
{
    unsigned cls = cm_size_class(small_sizes[2]);
    struct cm_block *first = longer_list(cls), *second = cm_link_decode(first->next_enc);
    uintptr_t saved = first->next_enc;
    first->next_enc = cm_link_encode((struct cm_block *)((char *)second + 8));
    char why[512];
    bool ok = cm_heap_validate(why, sizeof why);
    first->next_enc = saved;
    ck_assert_msg(strstr(why, "block start") != NULL, "the report does not say why: %s", why);
    expect_report("thread-cache link", ok, why, "list entry 1");
}
END_TEST

START_TEST(test_corrupt_tcache_count)
{
    unsigned cls = cm_size_class(small_sizes[2]);
    longer_list(cls);
    cm_tls.room[cls]++;
    char why[512];
    bool ok = cm_heap_validate(why, sizeof why);
    cm_tls.room[cls]--;
    expect_report("thread-cache room", ok, why, "more than its count");
}
END_TEST

START_TEST(test_corrupt_segment_map)
{
    struct cm_segment *s = cm_segment_of(small[1][0]);
    uint8_t *byte = &cm_hot.segmap[(uintptr_t)s >> CM_SEG_SHIFT];
    uint8_t saved = *byte;
    ck_assert_uint_eq(saved, cm_arenas[0]->tag);
    *byte = cm_arenas[1]->tag;
    char why[512];
    bool ok = cm_heap_validate(why, sizeof why);
    *byte = saved;
    expect_report("segment-map byte", ok, why, "segment map");
}
END_TEST

START_TEST(test_corrupt_free_run_order)
{
    struct cm_arena *a = cm_arenas[0];
    struct cm_run *r = NULL;
    unsigned o = CM_MAX_ORDER + 1;
    while (o-- > 0 && !(r = a->dirty_runs[o]) && !(r = a->clean_runs[o])) {
    }
    ck_assert_msg(r != NULL, "arena 0 has no free run");
    uint8_t saved = r->order;
    r->order = (uint8_t)(o > 0 ? o - 1 : o + 1);
    char why[512];
    bool ok = cm_heap_validate(why, sizeof why);
    r->order = saved;
    expect_report("free run's order", ok, why, "order");
}
END_TEST

START_TEST(test_corrupt_remote_stack)
{
    unsigned cls = cm_size_class(FROM_WORKER_SIZE);
    struct cm_block *b = cm_arenas[1]->remote[cls];
    ck_assert_ptr_nonnull(b);
    uintptr_t saved = b->free_key;
    b->free_key = 0;
    char why[512];
    bool ok = cm_heap_validate(why, sizeof why);
    b->free_key = saved;
    expect_report("remote-stack block's free key", ok, why, "remote stack");
}
END_TEST

START_TEST(test_corrupt_bin_nruns)
{
    unsigned cls = cm_size_class(MEDIUM_SIZE);
    struct cm_bin *bin = &cm_arenas[0]->bins[cls];
    bin->nruns++;
    char why[512];
    bool ok = cm_heap_validate(why, sizeof why);
    bin->nruns--;
    expect_report("bin nruns", ok, why, "nruns");
}
END_TEST

/* ---- the assertion macros ---- */

START_TEST(test_disabled_levels_do_not_evaluate)
{
    int evaluated = 0;
    cm_assert(++evaluated > 0);
    cm_assert_internal(++evaluated > 0);
    cm_assert_expensive(++evaluated > 0);
    ck_assert_int_eq(evaluated, 1 + (CM_DEBUG >= 2) + (CM_DEBUG >= 3));
}
END_TEST

static volatile int forty_two = 42;

static void __attribute__((noinline)) break_an_assertion(void)
{
    cm_assert(forty_two == 41);
}

START_TEST(test_assert_failure_message)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        break_an_assertion();
        _exit(0);
    }
    close(fds[1]);
    char text[512];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof text - 1 && (n = read(fds[0], text + len, sizeof text - 1 - len)) > 0)
        len += (size_t)n;
    text[len] = '\0';
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "a failed cm_assert did not abort (status %#x)", status);
    ck_assert_msg(strstr(text, "cmalloc: assertion failed: forty_two == 41 (") == text, "%s",
                  text);
    ck_assert_msg(strstr(text, "validate_corrupt.c:") != NULL, "%s", text);
    ck_assert_msg(strstr(text, ", break_an_assertion)\n") != NULL, "%s", text);
}
END_TEST

int main(void)
{
    /* A second arena for the worker even on one CPU. */
    mallopt(M_ARENA_MAX, 4);
    Suite *s = suite_create("cmalloc-validate");
    TCase *corrupt = tcase_create("corrupt");
    tcase_set_timeout(corrupt, 120);
    tcase_add_checked_fixture(corrupt, setup, teardown);
    tcase_add_test(corrupt, test_sound_heap);
    tcase_add_test(corrupt, test_corrupt_run_nfree);
    tcase_add_test(corrupt, test_corrupt_free_list_link);
    tcase_add_test(corrupt, test_corrupt_page_cls);
    tcase_add_test(corrupt, test_corrupt_tcache_link);
    tcase_add_test(corrupt, test_corrupt_tcache_count);
    tcase_add_test(corrupt, test_corrupt_segment_map);
    tcase_add_test(corrupt, test_corrupt_free_run_order);
    tcase_add_test(corrupt, test_corrupt_remote_stack);
    tcase_add_test(corrupt, test_corrupt_bin_nruns);
    suite_add_tcase(s, corrupt);
    TCase *asserts = tcase_create("asserts");
    tcase_add_test(asserts, test_disabled_levels_do_not_evaluate);
    tcase_add_test(asserts, test_assert_failure_message);
    suite_add_tcase(s, asserts);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
