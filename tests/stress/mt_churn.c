/* Concurrency: thread churn.  5000 short-lived threads (8 alive at a time,
 * some of them detached) each allocate a little in many size classes, free
 * most of it themselves, free a block left behind by an earlier (by now
 * dead) thread, and leave a few blocks for the main thread to free after
 * they have exited.
 *
 * Whatever a thread caches for itself must be given back when it exits:
 * RSS after all threads may exceed RSS after the first 200 threads by at
 * most 64 MiB.
 *
 * usage: mt_churn [threads]
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define WAVE 8
#define LEFT 3
#define PER_THREAD 160

struct left {
    unsigned char *p[LEFT];
    size_t n[LEFT];
    uint64_t id[LEFT];
};

struct job {
    long index;
    int detached;
    struct left out;
};

/* one block handed from thread to thread */
static pthread_mutex_t handoff_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *handoff_p;
static size_t handoff_n;
static uint64_t handoff_id;

static atomic_long detached_done;

static size_t size_for(long t, int i)
{
    /* walk through many classes: 8 B .. 32 KiB, one bigger block */
    if (i == 0)
        return 100 * KiB + (size_t)(t % 64) * 1000;
    return (size_t)8 << ((i + t) % 13) | (size_t)(i * 8 % 61);
}

static void *churn(void *arg)
{
    struct job *job = arg;
    long t = job->index;
    unsigned char *blk[PER_THREAD];
    size_t n[PER_THREAD];
    int i;
    for (i = 0; i < PER_THREAD; i++) {
        n[i] = size_for(t, i);
        blk[i] = (i % 5 == 0) ? calloc(n[i], 1) : malloc(n[i]);
        TU_CHECK(blk[i] != NULL, "thread %ld: allocation of %zu", t, n[i]);
        tu_fill(blk[i], n[i], (uint64_t)t * 1000 + (uint64_t)i);
    }
    /* a realloc or two */
    for (i = 1; i < PER_THREAD; i += 40) {
        size_t bad;
        unsigned char *q = realloc(blk[i], n[i] * 3 + 5);
        TU_CHECK(q != NULL, "realloc");
        bad = tu_verify(q, n[i], (uint64_t)t * 1000 + (uint64_t)i);
        TU_CHECK(bad == (size_t)-1, "thread %ld: realloc lost byte %zu", t, bad);
        blk[i] = q;
        n[i] = n[i] * 3 + 5;
        tu_fill(blk[i], n[i], (uint64_t)t * 1000 + (uint64_t)i);
    }
    for (i = 0; i < PER_THREAD; i++) {
        size_t bad = tu_verify(blk[i], n[i], (uint64_t)t * 1000 + (uint64_t)i);
        TU_CHECK(bad == (size_t)-1, "thread %ld: block %d (%zu bytes) corrupted at %zu", t, i,
                 n[i], bad);
    }
    /* leave LEFT blocks for the main thread, free the rest here */
    for (i = 0; i < PER_THREAD; i++) {
        if (i >= PER_THREAD - LEFT && !job->detached) {
            int k = i - (PER_THREAD - LEFT);
            job->out.p[k] = blk[i];
            job->out.n[k] = n[i];
            job->out.id[k] = (uint64_t)t * 1000 + (uint64_t)i;
        } else {
            free(blk[i]);
        }
    }
    /* swap a block with an earlier thread: free what it left */
    {
        unsigned char *mine = malloc(777), *theirs;
        size_t their_n;
        uint64_t their_id;
        TU_CHECK(mine != NULL, "malloc");
        tu_fill(mine, 777, (uint64_t)t);
        pthread_mutex_lock(&handoff_lock);
        theirs = handoff_p;
        their_n = handoff_n;
        their_id = handoff_id;
        handoff_p = mine;
        handoff_n = 777;
        handoff_id = (uint64_t)t;
        pthread_mutex_unlock(&handoff_lock);
        if (theirs) {
            size_t bad = tu_verify(theirs, their_n, their_id);
            TU_CHECK(bad == (size_t)-1, "handed-off block corrupted at %zu", bad);
            free(theirs);
        }
    }
    if (job->detached) {
        free(job);
        atomic_fetch_add(&detached_done, 1);
    }
    return NULL;
}

static long run_threads(long from, long to, long *detached_started)
{
    pthread_attr_t attr;
    long t = from;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * KiB);
    while (t < to) {
        pthread_t tid[WAVE];
        struct job *jobs[WAVE];
        int k, m = 0;
        for (k = 0; k < WAVE && t < to; k++, t++) {
            struct job *job = calloc(1, sizeof *job);
            TU_CHECK(job != NULL, "calloc");
            job->index = t;
            job->detached = (t % 10 == 9);
            if (job->detached) {
                pthread_t d;
                (*detached_started)++;
                TU_CHECK(pthread_create(&d, &attr, churn, job) == 0, "pthread_create");
                pthread_detach(d);
                continue;
            }
            TU_CHECK(pthread_create(&tid[m], &attr, churn, job) == 0, "pthread_create");
            jobs[m++] = job;
        }
        for (k = 0; k < m; k++) {
            int i;
            TU_CHECK(pthread_join(tid[k], NULL) == 0, "pthread_join");
            /* free what the dead thread left behind */
            for (i = 0; i < LEFT; i++) {
                size_t bad = tu_verify(jobs[k]->out.p[i], jobs[k]->out.n[i], jobs[k]->out.id[i]);
                TU_CHECK(bad == (size_t)-1, "left-over block corrupted at %zu", bad);
                free(jobs[k]->out.p[i]);
            }
            free(jobs[k]);
        }
    }
    pthread_attr_destroy(&attr);
    /* wait for the detached ones to finish their work */
    while (atomic_load(&detached_done) < *detached_started)
        usleep(1000);
    usleep(20000); /* and to be gone */
    return t;
}

int main(int argc, char **argv)
{
    long total = argc > 1 ? atol(argv[1]) : 5000;
    long warmup = 200, detached = 0;
    size_t rss_warm, rss_end;
    alarm(300);
    tu_expect_cmalloc();
    if (total < 2 * warmup)
        total = 2 * warmup;
    run_threads(0, warmup, &detached);
    rss_warm = tu_rss_bytes();
    run_threads(warmup, total, &detached);
    rss_end = tu_rss_bytes();
    if (handoff_p)
        free(handoff_p);
    printf("mt_churn: %ld threads (%ld detached); RSS after %ld: %zu KiB, after %ld: %zu KiB\n",
           total, detached, warmup, rss_warm / 1024, total, rss_end / 1024);
    TU_CHECK(rss_warm > 0, "cannot read /proc/self/statm");
    TU_CHECK(rss_end <= rss_warm + 64 * MiB,
             "RSS grew by %zu KiB over %ld threads: memory of exited threads is not reclaimed",
             (rss_end - rss_warm) / 1024, total - warmup);
    printf("mt_churn: OK\n");
    return 0;
}
