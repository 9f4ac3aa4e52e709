/* Random sizes with cross-thread frees, in the manner of rpmalloc's
 * benchmark (rptest).
 *
 * Each of THREADS threads keeps BLOCKS slots.  A loop frees OPS blocks at
 * scattered slots, then allocates OPS blocks into scattered slots (freeing
 * whatever was there).  Sizes are MIN..MAX bytes with a linear falloff:
 * small blocks are the most common, MAX the rarest.  Every CROSS-th loop
 * the thread also allocates OPS blocks and hands them, in one batch, to the
 * next thread, which frees them at the start of its next loop.  A sender
 * waits (freeing its own inbox meanwhile) while the receiver has PENDING
 * batches unread, so oversubscribed threads cannot pile up batches
 * without bound while their receiver is not scheduled.
 *
 *   rptest THREADS LOOPS [BLOCKS=1000] [OPS=100] [MIN=8] [MAX=16384] [CROSS=2]
 *
 * Work is fixed per thread, so the time at 2 threads against 1 shows the
 * scaling; peak RSS shows how well freed memory, remote frees included, is
 * reused.  Prints "rptest threads=T ... sum=... lost=0 bad=0": sum covers
 * the blocks allocated (a fixed sequence per thread), lost is what was
 * allocated but never freed intact. */
#include "bench.h"

#include <sched.h>
#include <stdatomic.h>

#define PENDING 4

/* A batch handed to another thread: a node of its inbox stack. */
struct batch {
    struct batch *next;
    unsigned n;
    struct bench_sealed b[];
};

struct worker {
    _Alignas(64) _Atomic(struct batch *) inbox;
    _Atomic int pending; /* batches in the inbox */
    int id, threads;
    long long loops;
    unsigned blocks, ops, cross;
    size_t min, max;
    struct worker *all;
    uint64_t allocated, freed;
    unsigned long bad;
};

static _Atomic int finished; /* threads that will send nothing more */

/* Linear falloff on [min, max]: the smaller of two uniform draws. */
static size_t falloff_size(bench_rng *r, size_t min, size_t max)
{
    uint32_t span = (uint32_t)(max - min + 1);
    uint32_t a = bench_below(r, span), b = bench_below(r, span);
    return min + (a < b ? a : b);
}

static void take(struct worker *w, struct bench_sealed *b)
{
    bench_sealed_free(b, &w->freed, &w->bad);
}

static void give(struct worker *w, struct bench_sealed *b, bench_rng *r, uint64_t *tag)
{
    w->allocated += bench_sealed_alloc(b, falloff_size(r, w->min, w->max), (*tag)++);
}

/* Free the batches in our inbox; returns how many there were. */
static int drain_inbox(struct worker *w)
{
    struct batch *list = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
    int n = 0;
    while (list) {
        n++;
        struct batch *next = list->next;
        for (unsigned i = 0; i < list->n; i++)
            take(w, &list->b[i]);
        free(list);
        list = next;
    }
    if (n)
        atomic_fetch_sub_explicit(&w->pending, n, memory_order_relaxed);
    return n;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    bench_rng r = bench_rng_seed(0x7e57 + (uint64_t)w->id);
    uint64_t tag = ((uint64_t)w->id + 1) << 40;
    struct bench_sealed *slot = calloc(w->blocks, sizeof *slot);
    if (!slot)
        bench_die("out of memory");
    struct worker *next = &w->all[(w->id + 1) % w->threads];
    for (long long loop = 0; loop < w->loops; loop++) {
        drain_inbox(w);
        /* Scattered over the whole set: every slot is drawn at random. */
        for (unsigned i = 0; i < w->ops; i++)
            take(w, &slot[bench_below(&r, w->blocks)]);
        for (unsigned i = 0; i < w->ops; i++) {
            struct bench_sealed *b = &slot[bench_below(&r, w->blocks)];
            take(w, b);
            give(w, b, &r, &tag);
        }
        if (w->cross && loop % w->cross == 0) {
            struct batch *h = bench_xmalloc(sizeof *h + w->ops * sizeof h->b[0]);
            h->n = w->ops;
            for (unsigned i = 0; i < w->ops; i++)
                give(w, &h->b[i], &r, &tag);
            while (atomic_load_explicit(&next->pending, memory_order_relaxed) >= PENDING)
                if (!drain_inbox(w))
                    sched_yield();
            atomic_fetch_add_explicit(&next->pending, 1, memory_order_relaxed);
            h->next = atomic_load_explicit(&next->inbox, memory_order_relaxed);
            while (!atomic_compare_exchange_weak_explicit(&next->inbox, &h->next, h,
                                                          memory_order_release,
                                                          memory_order_relaxed))
                ;
        }
    }
    /* Keep freeing what arrives (a sender may wait for room in our inbox)
     * until every thread has sent its last batch. */
    atomic_fetch_add_explicit(&finished, 1, memory_order_release);
    while (atomic_load_explicit(&finished, memory_order_acquire) < w->threads)
        if (!drain_inbox(w))
            sched_yield();
    drain_inbox(w);
    for (unsigned i = 0; i < w->blocks; i++)
        take(w, &slot[i]);
    free(slot);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s THREADS LOOPS [BLOCKS] [OPS] [MIN] [MAX] [CROSS]\n", argv[0]);
        return 2;
    }
    int threads = bench_threads_arg(argc, argv, 1, 1);
    long long loops = bench_arg(argc, argv, 2, 1000);
    long long blocks = bench_arg(argc, argv, 3, 1000);
    long long ops = bench_arg(argc, argv, 4, 100);
    size_t min = (size_t)bench_arg(argc, argv, 5, 8);
    size_t max = (size_t)bench_arg(argc, argv, 6, 16384);
    long long cross = bench_arg(argc, argv, 7, 2);
    if (blocks < 1 || blocks > 10000000 || ops < 1 || ops > blocks || min < 1 ||
        max < min || max > ((size_t)1 << 31) || cross > 1000000)
        bench_die("bad arguments");

    struct worker *workers = aligned_alloc(64, (size_t)threads * sizeof *workers);
    if (!workers)
        bench_die("out of memory");
    for (int t = 0; t < threads; t++) {
        workers[t] = (struct worker){.id = t, .threads = threads, .loops = loops,
                                     .blocks = (unsigned)blocks, .ops = (unsigned)ops,
                                     .cross = (unsigned)cross, .min = min, .max = max,
                                     .all = workers};
        atomic_init(&workers[t].inbox, NULL);
        atomic_init(&workers[t].pending, 0);
    }
    bench_run_threads(threads, run, workers, sizeof *workers);

    uint64_t allocated = 0, freed = 0;
    unsigned long bad = 0;
    for (int t = 0; t < threads; t++) {
        allocated += workers[t].allocated;
        freed += workers[t].freed;
        bad += workers[t].bad;
    }
    free(workers);
    printf("rptest threads=%d loops=%lld blocks=%lld ops=%lld size=%zu-%zu cross=%lld sum=%llu "
           "lost=%llu bad=%lu\n",
           threads, loops, blocks, ops, min, max, cross, (unsigned long long)allocated,
           (unsigned long long)(allocated - freed), bad);
    return bad != 0 || allocated != freed;
}
