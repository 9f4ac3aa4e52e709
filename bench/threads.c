/* Thread churn: many short-lived threads, each allocating a little, as in a
 * program that starts a thread per task.  TOTAL threads are started, at
 * most CONCURRENT alive at a time.  Each thread allocates ALLOCS blocks of
 * the small-object mix, frees all but two, and leaves those two to the
 * main thread, which frees them after joining it (so a dead thread's
 * blocks are freed remotely).  What it measures is the allocator's cost
 * of setting a thread up and tearing it down (caches, arena choice).
 *
 *   threads CONCURRENT TOTAL [ALLOCS=100]
 *
 * Prints "threads concurrent=C total=N sum=... bad=0". */
#include "bench.h"

struct job {
    long long index;
    unsigned allocs;
    void *keep[2];
    uint64_t sum;
    unsigned long bad;
};

static void *run(void *arg)
{
    struct job *j = arg;
    bench_rng r = bench_rng_seed((uint64_t)j->index);
    void *p[1024];
    unsigned n = j->allocs;
    for (unsigned i = 0; i < n; i++) {
        size_t size = bench_small_mix(&r);
        p[i] = bench_xmalloc(size);
        bench_stamp(p[i], size, (uint64_t)j->index * 1024 + i);
    }
    /* Free in a shuffled order, keeping the first two for the main thread. */
    for (unsigned i = n - 1; i > 2; i--) {
        unsigned k = 2 + bench_below(&r, i - 1);
        void *t = p[i];
        p[i] = p[k];
        p[k] = t;
    }
    for (unsigned i = 2; i < n; i++) {
        j->sum += bench_check(p[i], &j->bad);
        free(p[i]);
    }
    j->keep[0] = p[0];
    j->keep[1] = p[1];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s CONCURRENT TOTAL [ALLOCS]\n", argv[0]);
        return 2;
    }
    int conc = bench_threads_arg(argc, argv, 1, 1);
    long long total = bench_arg(argc, argv, 2, 1000);
    unsigned allocs = (unsigned)bench_arg(argc, argv, 3, 100);
    if (allocs < 2 || allocs > 1024)
        bench_die("ALLOCS must be 2..1024");

    struct job jobs[BENCH_MAX_THREADS];
    pthread_t tids[BENCH_MAX_THREADS];
    uint64_t sum = 0;
    unsigned long bad = 0;
    /* A ring of CONCURRENT thread slots: join the oldest, start the next. */
    for (long long i = 0; i < total + conc; i++) {
        int s = (int)(i % conc);
        if (i >= conc) {
            struct job *j = &jobs[s];
            pthread_join(tids[s], NULL);
            for (int k = 0; k < 2; k++) {
                j->sum += bench_check(j->keep[k], &j->bad);
                free(j->keep[k]);
            }
            sum += j->sum;
            bad += j->bad;
        }
        if (i < total) {
            jobs[s] = (struct job){.index = i, .allocs = allocs};
            if (pthread_create(&tids[s], NULL, run, &jobs[s]) != 0)
                bench_die("pthread_create failed");
        }
    }
    printf("threads concurrent=%d total=%lld allocs=%u sum=%llu bad=%lu\n", conc, total, allocs,
           (unsigned long long)sum, bad);
    return bad != 0;
}
