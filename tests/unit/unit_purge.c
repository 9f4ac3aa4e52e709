/* The purge policy (src/purge.c, src/background.c), tested through the
 * internal state it keeps: linked against the static library. No test
 * asserts a time; where the policy waits (the decay, the grace period
 * above the cap), a test sleeps well beyond the wait and then checks what
 * must have happened, so a slow machine only makes it wait longer.
 *
 * The background thread's tests run this program again (argv[0]) with the
 * option in its environment, as a probe whose exit status is the answer. */
#define _GNU_SOURCE
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"
#include "validate_hook.h"

static const char *self_path;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Allocates about bytes of 64..1024-byte blocks, chained, and frees them:
 * dirty free pages in the calling thread's arena. */
static void churn(size_t bytes)
{
    void **head = NULL;
    size_t total = 0, i = 0;
    while (total < bytes) {
        size_t n = 64 + (i++ * 40) % 960;
        void **p = malloc(tu_opaque(n));
        if (!p)
            abort(); /* also runs in the probes, outside Check */
        memset(p, 1, n);
        p[0] = head;
        head = p;
        total += n;
    }
    while (head) {
        void **next = head[0];
        free(head);
        head = next;
    }
}

static struct cm_arena *my_arena(void)
{
    return cm_tls.arena;
}

static size_t dirty_pages(struct cm_arena *a)
{
    cm_lock(&a->lock);
    size_t n = a->dirty_pages;
    cm_unlock(&a->lock);
    return n;
}

static uint64_t purged_bytes(void)
{
    struct cm_os_stats st;
    cm_os_stats_get(&st);
    return st.purged;
}

struct worker {
    size_t bytes;
    struct cm_arena *arena;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    churn(w->bytes);
    w->arena = my_arena();
    return NULL;
}

static struct cm_arena *run_worker(size_t bytes)
{
    struct worker w = {bytes, NULL};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, worker_main, &w), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_ptr_nonnull(w.arena);
    return w.arena;
}

/* Never purged by time or by the cap during these tests unless they say. */
static void hold_everything(void)
{
    cm_opt.purge_delay_ms = (size_t)1 << 30;
    cm_opt.trim_threshold = SIZE_MAX / 2;
}

START_TEST(test_thread_exit_alone_returns_everything)
{
    hold_everything();
    free(malloc(tu_opaque(16))); /* the main thread takes an arena first */
    cm_opt.arena_max = 8;
    struct cm_arena *a = run_worker((size_t)32 << 20);
    ck_assert_ptr_ne(a, my_arena());
    cm_lock(&a->lock);
    ck_assert_uint_eq(a->nthreads, 0);
    ck_assert_uint_le(a->dirty_pages, CM_EXIT_KEEP_PAGES);
    ck_assert_uint_le(a->nsegments, CM_EXIT_KEEP_SEGMENTS);
    cm_unlock(&a->lock);
}
END_TEST

START_TEST(test_thread_exit_shared_keeps_only_what_is_used)
{
    hold_everything();
    free(malloc(tu_opaque(16)));
    cm_opt.arena_max = 1;
    struct cm_arena *a = run_worker((size_t)32 << 20);
    ck_assert_ptr_eq(a, my_arena());
    cm_lock(&a->lock);
    ck_assert_uint_eq(a->nthreads, 1);
    size_t in_use = a->bytes_out >> CM_PAGE_SHIFT;
    ck_assert_uint_le(a->dirty_pages, in_use > CM_EXIT_KEEP_PAGES ? in_use : CM_EXIT_KEEP_PAGES);
    cm_unlock(&a->lock);
}
END_TEST

/* Memory reused at once, under the cap and younger than the delay, is
 * never purged. */
START_TEST(test_active_reuse_stays)
{
    hold_everything();
    cm_opt.trim_threshold = (size_t)64 << 20;
    churn((size_t)16 << 20);
    uint64_t before = purged_bytes();
    for (int i = 0; i < 10; i++)
        churn((size_t)16 << 20);
    ck_assert_uint_eq(purged_bytes(), before);
    ck_assert_uint_gt(dirty_pages(my_arena()), 0);
}
END_TEST

/* Runs left alone for the purge delay go back. */
START_TEST(test_decay_purges_what_is_left_alone)
{
    hold_everything();
    churn((size_t)16 << 20);
    struct cm_arena *a = my_arena();
    ck_assert_uint_gt(dirty_pages(a), 1024);
    cm_opt.purge_delay_ms = 20;
    sleep_ms(200);
    cm_lock(&a->lock);
    cm_purge_decay(a);
    ck_assert_uint_eq(a->dirty_pages, 0);
    cm_unlock(&a->lock);
}
END_TEST

/* Above the cap past the grace period, ticks bring the arena down to it,
 * a chunk at a time (the decay is held off). */
START_TEST(test_cap_purges_in_bounded_ticks)
{
    hold_everything();
    churn((size_t)64 << 20);
    struct cm_arena *a = my_arena();
    size_t cap = 8 << (20 - CM_PAGE_SHIFT);
    ck_assert_uint_gt(dirty_pages(a), 2 * cap);
    cm_opt.trim_threshold = (size_t)cap << CM_PAGE_SHIFT;
    cm_lock(&a->lock);
    a->released_pages = 1;
    cm_purge_tick(a); /* notes that the arena is above the cap */
    size_t after_first = a->dirty_pages;
    cm_unlock(&a->lock);
    sleep_ms(4 * CM_PURGE_GRACE_MS);
    for (int ticks = 0; ticks < CM_PURGE_GRACE_TICKS + 1000; ticks++) {
        cm_lock(&a->lock);
        size_t before = a->dirty_pages;
        a->released_pages = 1;
        cm_purge_tick(a);
        size_t now = a->dirty_pages;
        cm_unlock(&a->lock);
        ck_assert_uint_le(before - now, CM_PURGE_CHUNK_PAGES + ((size_t)1 << CM_MAX_ORDER));
        if (now < cap + CM_PURGE_CHUNK_PAGES)
            break;
        if (ticks >= CM_PURGE_GRACE_TICKS)
            ck_assert_uint_lt(now, before);
    }
    /* What stays above the cap is less than a chunk. */
    ck_assert_uint_lt(dirty_pages(a), cap + CM_PURGE_CHUNK_PAGES);
    ck_assert_uint_lt(dirty_pages(a), after_first);
}
END_TEST

/* A tick with nothing released does nothing while under the cap, even
 * when everything would decay at once. */
START_TEST(test_tick_without_release_is_free)
{
    hold_everything();
    churn((size_t)8 << 20);
    struct cm_arena *a = my_arena();
    cm_opt.purge_delay_ms = 0;
    uint64_t before = purged_bytes();
    cm_lock(&a->lock);
    a->released_pages = 0;
    a->over_cap_ms = 0;
    a->over_cap_ticks = 0;
    cm_purge_tick(a);
    cm_unlock(&a->lock);
    ck_assert_uint_eq(purged_bytes(), before);
}
END_TEST

/* ---- The background thread, in probes (this program run again). */

/* Threads of this process named cmalloc-purge, read without stdio. */
static int purge_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, comm, sizeof comm - 1);
        close(fd);
        if (len > 0 && strncmp(comm, "cmalloc-purge", 13) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* Polls until the thread count is want, for at most 10 s. */
static int wait_threads(int want)
{
    int n = purge_threads();
    for (int i = 0; i < 1000 && n != want; i++) {
        sleep_ms(10);
        n = purge_threads();
    }
    return n;
}

static void refill_some(void)
{
    void *v[512];
    for (int i = 0; i < 512; i++)
        v[i] = malloc(tu_opaque(3000));
    for (int i = 0; i < 512; i++)
        free(v[i]);
}

/* Exit status: the number of background threads after the allocations
 * (waiting for one when asked, else half a second), 10 + it when the state
 * disagrees with the option. */
static int probe_count(void)
{
    refill_some();
    bool asked = cm_opt.background_purge;
    int n = asked ? wait_threads(1) : (sleep_ms(500), purge_threads());
    if (asked != cm_background_running())
        return 10 + n;
    return n;
}

/* Exit status 0 when: the thread runs in the parent; the forked child has
 * none and wants one until its first slow path, which starts it; the
 * parent's keeps running. */
static int probe_fork(void)
{
    refill_some();
    if (wait_threads(1) != 1)
        return 1;
    pid_t pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        if (purge_threads() != 0 || cm_background_state != CM_BG_WANTED)
            _exit(3);
        refill_some();
        _exit(wait_threads(1) == 1 && cm_background_running() ? 0 : 4);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return 5;
    if (WEXITSTATUS(status) != 0)
        return WEXITSTATUS(status);
    return purge_threads() == 1 ? 0 : 6;
}

/* Exit status 0 when the thread purges memory left alone, while the
 * program makes no call (polling for up to 10 s). */
static int probe_idle(void)
{
    churn((size_t)16 << 20);
    struct cm_arena *a = my_arena();
    if (__atomic_load_n(&a->dirty_pages, __ATOMIC_RELAXED) == 0)
        return 1;
    for (int i = 0; i < 1000; i++) {
        if (__atomic_load_n(&a->dirty_pages, __ATOMIC_RELAXED) == 0)
            return 0;
        sleep_ms(10);
    }
    return 2;
}

/* Runs this program as a probe with extra environment; its exit status. */
static int run_probe(const char *mode, const char *env1, const char *env2)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char *argv[] = {(char *)self_path, (char *)mode, NULL};
        char *envp[] = {(char *)env1, (char *)env2, NULL};
        execve(self_path, argv, envp);
        _exit(127);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

START_TEST(test_background_never_unasked)
{
    ck_assert_int_eq(run_probe("count", "CMALLOC_BACKGROUND_PURGE=off", NULL), 0);
    ck_assert_int_eq(run_probe("count", "CMALLOC_PURGE_DELAY_MS=10", NULL), 0);
}
END_TEST

START_TEST(test_background_started_when_asked)
{
    ck_assert_int_eq(run_probe("count", "CMALLOC_BACKGROUND_PURGE=on", NULL), 1);
    ck_assert_int_eq(run_probe("count", "CMALLOC_OPTIONS=background_purge=on", NULL), 1);
}
END_TEST

START_TEST(test_background_across_fork)
{
    ck_assert_int_eq(run_probe("fork", "CMALLOC_BACKGROUND_PURGE=on", NULL), 0);
}
END_TEST

START_TEST(test_background_purges_idle_memory)
{
    ck_assert_int_eq(
        run_probe("idle", "CMALLOC_BACKGROUND_PURGE=on", "CMALLOC_PURGE_DELAY_MS=20"), 0);
}
END_TEST

int main(int argc, char **argv)
{
    self_path = argv[0];
    if (argc > 1) {
        if (strcmp(argv[1], "count") == 0)
            return probe_count();
        if (strcmp(argv[1], "fork") == 0)
            return probe_fork();
        if (strcmp(argv[1], "idle") == 0)
            return probe_idle();
        return 99;
    }
    Suite *s = suite_create("cmalloc-purge");
    TCase *tc = tcase_create("policy");
    tcase_add_checked_fixture(tc, NULL, tu_validate_heap);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_thread_exit_alone_returns_everything);
    tcase_add_test(tc, test_thread_exit_shared_keeps_only_what_is_used);
    tcase_add_test(tc, test_active_reuse_stays);
    tcase_add_test(tc, test_decay_purges_what_is_left_alone);
    tcase_add_test(tc, test_cap_purges_in_bounded_ticks);
    tcase_add_test(tc, test_tick_without_release_is_free);
    suite_add_tcase(s, tc);
    TCase *bg = tcase_create("background");
    tcase_set_timeout(bg, 120);
    tcase_add_test(bg, test_background_never_unasked);
    tcase_add_test(bg, test_background_started_when_asked);
    tcase_add_test(bg, test_background_across_fork);
    tcase_add_test(bg, test_background_purges_idle_memory);
    suite_add_tcase(s, bg);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
