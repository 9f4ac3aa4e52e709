/* A program for unit_stats to run with statistics options in its
 * environment (CMALLOC_OPTIONS, CMALLOC_STATS_*); cmalloc's reports go to
 * stderr, the probe's own output to stdout.
 *
 *   stats_probe exit
 *       allocates 1000 blocks of 100 bytes, keeps them and exits: the
 *       exit-time report shows them in use.
 *   stats_probe signal SIGNO RAISES KILLS
 *       two threads hammer malloc and free (one with SIGNO blocked); the main
 *       thread raises SIGNO RAISES times (each report is made before raise
 *       returns, so there are exactly RAISES), then sends it KILLS times to
 *       the other hammering thread, which may be holding an arena lock when
 *       it arrives. A report that waited for that lock would hang: alarm()
 *       turns a hang into a failure.
 *
 *   stats_probe cancel-exit
 *       a thread with a cancellation request pending calls exit: the
 *       exit-time report must come out whole all the same.
 *   stats_probe cancel-signal SIGNO
 *       a thread with a cancellation request pending raises SIGNO: the
 *       report comes out whole, and the thread is cancelled afterwards.
 *
 * Prints "probe done" when it gets to the end. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static int stop;
static unsigned long rounds[2];

struct hammer {
    int id;
    int block;  /* signal to block in this thread, 0 for none */
};

static void *hammer(void *arg)
{
    struct hammer *h = arg;
    uint64_t rng = tu_seed((uint64_t)h->id, 17);
    void *slots[64] = {0};
    if (h->block) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, h->block);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
    }
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        unsigned i = (unsigned)(tu_rand(&rng) % 64);
        free(slots[i]);
        slots[i] = malloc(tu_opaque(16 + tu_rand(&rng) % 4000));
        TU_CHECK(slots[i] != NULL, "malloc failed");
        __atomic_add_fetch(&rounds[h->id], 1, __ATOMIC_RELAXED);
    }
    for (unsigned i = 0; i < 64; i++)
        free(slots[i]);
    return NULL;
}

/* Waits until both hammers have run some more, so that each signal lands
 * while they are busy. */
static void let_hammers_run(void)
{
    unsigned long start[2];
    for (int k = 0; k < 2; k++)
        start[k] = __atomic_load_n(&rounds[k], __ATOMIC_RELAXED);
    for (int k = 0; k < 2; k++)
        while (__atomic_load_n(&rounds[k], __ATOMIC_RELAXED) < start[k] + 100)
            sched_yield();
}

static int signal_mode(int sig, int raises, int kills)
{
    pthread_t threads[2];
    struct hammer hs[2] = {{0, sig}, {1, 0}};
    alarm(120);
    for (int k = 0; k < 2; k++)
        TU_CHECK(pthread_create(&threads[k], NULL, hammer, &hs[k]) == 0, "pthread_create");
    for (int i = 0; i < raises; i++) {
        let_hammers_run();
        TU_CHECK(raise(sig) == 0, "raise");
    }
    for (int i = 0; i < kills; i++) {
        let_hammers_run();
        TU_CHECK(pthread_kill(threads[1], sig) == 0, "pthread_kill");
    }
    let_hammers_run();
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    for (int k = 0; k < 2; k++)
        pthread_join(threads[k], NULL);
    return 0;
}

static void *exit_cancel_pending(void *arg)
{
    (void)arg;
    pthread_cancel(pthread_self());
    exit(0);
}

static void *raise_cancel_pending(void *arg)
{
    pthread_cancel(pthread_self());
    raise(*(int *)arg);
    pthread_testcancel();
    return NULL;
}

static int cancel_mode(const char *mode, int sig)
{
    pthread_t t;
    void *result = NULL;
    alarm(60);
    if (strcmp(mode, "cancel-exit") == 0) {
        printf("probe done\n");
        fflush(stdout);
    }
    TU_CHECK(pthread_create(&t, NULL, strcmp(mode, "cancel-exit") == 0 ? exit_cancel_pending
                                                                       : raise_cancel_pending,
                            &sig) == 0,
             "pthread_create");
    pthread_join(t, &result);
    TU_CHECK(result == PTHREAD_CANCELED, "the thread was not cancelled");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "exit") == 0) {
        for (int i = 0; i < 1000; i++)
            TU_CHECK(tu_opaque_ptr(malloc(tu_opaque(100))) != NULL, "malloc failed");
    } else if (argc == 5 && strcmp(argv[1], "signal") == 0) {
        signal_mode(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
    } else if (argc == 2 && strcmp(argv[1], "cancel-exit") == 0) {
        cancel_mode(argv[1], 0);
    } else if (argc == 3 && strcmp(argv[1], "cancel-signal") == 0) {
        cancel_mode(argv[1], atoi(argv[2]));
    } else {
        fprintf(stderr, "usage: %s exit | signal SIGNO RAISES KILLS | cancel-exit | cancel-signal SIGNO\n", argv[0]);
        return 2;
    }
    printf("probe done\n");
    return 0;
}
