/* A server simulation in the manner of Larson and Krishnan's benchmark.
 *
 * THREADS chains run at once.  Each chain owns a pool of SLOTS blocks of
 * MIN..MAX bytes, allocated by the main thread to begin with.  A chain's
 * thread replaces STEPS random blocks of the pool (free one, allocate a new
 * one of a random size), then starts a new thread, hands it the pool and
 * exits; ROUNDS threads in all work on each pool one after the other.  So
 * most frees are of blocks that another, often finished, thread allocated,
 * and threads come and go the way connection handlers of a server do.
 *
 * With SHARE > 0, one new block in SHARE is also swapped with a block that
 * another chain left in a shared exchange array, so the running threads
 * free each other's blocks too, not only those of their predecessors.
 *
 *   larson THREADS ROUNDS STEPS [SLOTS=2000] [MIN=16] [MAX=1000] [SHARE=0]
 *
 * Work is fixed per chain, so the time at 2 threads against 1 shows the
 * scaling.  Prints "larson threads=T sum=... bad=0". */
#include "bench.h"

#include <stdatomic.h>

#define EXCHANGE 256

static _Atomic(void *) exchange[EXCHANGE];

struct chain {
    void **pool;
    size_t slots, min, max;
    long long steps;
    unsigned share;
    int rounds_left;
    int id;
    bench_rng rng;
    uint64_t sum;
    unsigned long bad;
    uint64_t next_tag;
};

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static int chains_done;

static void *worker(void *arg)
{
    struct chain *c = arg;
    for (long long i = 0; i < c->steps; i++) {
        size_t k = bench_below(&c->rng, (uint32_t)c->slots);
        size_t size = bench_between(&c->rng, c->min, c->max);
        if (c->pool[k]) {
            c->sum += bench_check(c->pool[k], &c->bad);
            free(c->pool[k]);
        }
        void *p = bench_xmalloc(size);
        bench_stamp(p, size, c->next_tag++);
        if (c->share && bench_below(&c->rng, c->share) == 0)
            p = atomic_exchange(&exchange[bench_below(&c->rng, EXCHANGE)], p);
        c->pool[k] = p;
    }
    if (--c->rounds_left > 0) {
        /* Hand the pool to a fresh thread and leave. */
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, worker, c) != 0)
            bench_die("pthread_create failed");
        pthread_attr_destroy(&attr);
        return NULL;
    }
    pthread_mutex_lock(&done_lock);
    chains_done++;
    pthread_cond_signal(&done_cond);
    pthread_mutex_unlock(&done_lock);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s THREADS ROUNDS STEPS [SLOTS] [MIN] [MAX] [SHARE]\n", argv[0]);
        return 2;
    }
    int threads = bench_threads_arg(argc, argv, 1, 1);
    int rounds = (int)bench_arg(argc, argv, 2, 10);
    long long steps = bench_arg(argc, argv, 3, 100000);
    size_t slots = (size_t)bench_arg(argc, argv, 4, 2000);
    size_t min = (size_t)bench_arg(argc, argv, 5, 16);
    size_t max = (size_t)bench_arg(argc, argv, 6, 1000);
    long long share = bench_arg(argc, argv, 7, 0);
    if (share > 1000000 || rounds < 1 || slots < 1 || min < BENCH_STAMP_MIN || max < min)
        bench_die("bad arguments");

    struct chain *chains = calloc((size_t)threads, sizeof *chains);
    if (!chains)
        bench_die("out of memory");
    for (int t = 0; t < threads; t++) {
        struct chain *c = &chains[t];
        *c = (struct chain){.slots = slots, .min = min, .max = max, .steps = steps,
                            .share = (unsigned)share, .rounds_left = rounds, .id = t,
                            .rng = bench_rng_seed(4141 + (uint64_t)t),
                            .next_tag = (uint64_t)t << 40};
        c->pool = bench_xmalloc(slots * sizeof *c->pool);
        for (size_t k = 0; k < slots; k++) {
            size_t size = bench_between(&c->rng, min, max);
            c->pool[k] = bench_xmalloc(size);
            bench_stamp(c->pool[k], size, c->next_tag++);
        }
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int t = 0; t < threads; t++) {
        pthread_t tid;
        if (pthread_create(&tid, &attr, worker, &chains[t]) != 0)
            bench_die("pthread_create failed");
    }
    pthread_attr_destroy(&attr);
    pthread_mutex_lock(&done_lock);
    while (chains_done < threads)
        pthread_cond_wait(&done_cond, &done_lock);
    pthread_mutex_unlock(&done_lock);

    uint64_t sum = 0;
    unsigned long bad = 0;
    for (int t = 0; t < threads; t++) {
        struct chain *c = &chains[t];
        for (size_t k = 0; k < slots; k++) {
            if (!c->pool[k])
                continue;
            c->sum += bench_check(c->pool[k], &c->bad);
            free(c->pool[k]);
        }
        free(c->pool);
        sum += c->sum;
        bad += c->bad;
    }
    for (int i = 0; i < EXCHANGE; i++) {
        void *p = atomic_exchange(&exchange[i], NULL);
        if (p) {
            sum += bench_check(p, &bad);
            free(p);
        }
    }
    free(chains);
    printf("larson threads=%d rounds=%d steps=%lld share=%lld sum=%llu bad=%lu\n", threads, rounds,
           steps, share, (unsigned long long)sum, bad);
    return bad != 0;
}
