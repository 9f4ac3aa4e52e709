/* Blocks freed by a thread that is not attached to their arena, in
 * unit_api only: they do not serve that thread, they go back to their
 * arena, double frees on the way abort, and the accounting follows (see
 * api.h for the two builds). */
#include "api.h"

#if CMT_CMALLOC

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

/* ------------------------------------------------------------------ */

void api_remote_free_tests(Suite *s)
{
    TCase *tc;

    tc = api_tcase(s, "remote-free");
    tcase_add_test(tc, test_remote_free_goes_home);
    tcase_add_test(tc, test_remote_free_accounting);
    /* An abort ends the whole run unless each test has a process of its
     * own (not so under memcheck.sh). */
    if (!check_runs_in_one_process()) {
        tcase_add_test_raise_signal(tc, test_remote_double_free_at_once, SIGABRT);
        tcase_add_test_raise_signal(tc, test_remote_double_free_after_handback, SIGABRT);
        tcase_add_test_raise_signal(tc, test_remote_double_free_by_owner, SIGABRT);
    }
}

#endif /* CMT_CMALLOC */
