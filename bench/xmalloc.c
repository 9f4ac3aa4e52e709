/* Producer/consumer in the manner of xmalloc-test: blocks are allocated in
 * one thread and freed in another.
 *
 * THREADS threads stand in a ring.  Each allocates BATCHES batches of BATCH
 * blocks (16..256 bytes mostly, some up to 2 KiB) and passes every batch
 * to the next thread through a lock-free single-producer single-consumer
 * queue; each frees the batches that the previous thread sends it.  With
 * more than one thread, every free is a remote free; with one thread, the
 * thread frees its own batches, one queue length later.
 *
 * SIZE > 0 makes every block SIZE bytes (xmalloc-test's 64-byte blocks
 * with SIZE=64) instead of the mix.
 *
 *   xmalloc THREADS BATCHES [BATCH=64] [SIZE=0]
 *
 * Work is fixed per thread (each allocates and frees BATCHES*BATCH blocks),
 * so the time at 2 threads against 1 shows the scaling.
 * Prints "xmalloc threads=T sum=... bad=0". */
#include "bench.h"

#include <sched.h>
#include <stdatomic.h>

#define QUEUE_LEN 64 /* batches in flight between two neighbours */

struct batch {
    unsigned n;
    void *block[];
};

struct queue {
    _Alignas(64) _Atomic unsigned long head; /* consumer */
    _Alignas(64) _Atomic unsigned long tail; /* producer */
    struct batch *slot[QUEUE_LEN];
};

struct worker {
    int id;
    long long batches;
    unsigned batch;
    size_t size;
    struct queue *in, *out;
    uint64_t sum;
    unsigned long bad;
};

static _Atomic long long batches_left;

static int queue_push(struct queue *q, struct batch *b)
{
    unsigned long t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    if (t - atomic_load_explicit(&q->head, memory_order_acquire) == QUEUE_LEN)
        return 0;
    q->slot[t % QUEUE_LEN] = b;
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return 1;
}

static struct batch *queue_pop(struct queue *q)
{
    unsigned long h = atomic_load_explicit(&q->head, memory_order_relaxed);
    if (h == atomic_load_explicit(&q->tail, memory_order_acquire))
        return NULL;
    struct batch *b = q->slot[h % QUEUE_LEN];
    atomic_store_explicit(&q->head, h + 1, memory_order_release);
    return b;
}

/* Free every batch waiting in our inbound queue; returns how many. */
static int drain(struct worker *w)
{
    int n = 0;
    struct batch *b;
    while ((b = queue_pop(w->in)) != NULL) {
        for (unsigned i = 0; i < b->n; i++) {
            w->sum += bench_check(b->block[i], &w->bad);
            free(b->block[i]);
        }
        free(b);
        n++;
    }
    if (n)
        atomic_fetch_sub_explicit(&batches_left, n, memory_order_relaxed);
    return n;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    bench_rng r = bench_rng_seed(0x5eed + (uint64_t)w->id);
    uint64_t tag = (uint64_t)w->id << 40;
    for (long long k = 0; k < w->batches; k++) {
        struct batch *b = bench_xmalloc(sizeof *b + w->batch * sizeof(void *));
        b->n = w->batch;
        for (unsigned i = 0; i < w->batch; i++) {
            size_t size = w->size                 ? w->size
                          : bench_below(&r, 10) == 0 ? bench_between(&r, 257, 2048)
                                                     : bench_between(&r, 16, 256);
            b->block[i] = bench_xmalloc(size);
            bench_stamp(b->block[i], size, tag++);
        }
        while (!queue_push(w->out, b))
            if (!drain(w))
                sched_yield();
        drain(w);
    }
    while (atomic_load_explicit(&batches_left, memory_order_relaxed) > 0)
        if (!drain(w))
            sched_yield();
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s THREADS BATCHES [BATCH] [SIZE]\n", argv[0]);
        return 2;
    }
    int threads = bench_threads_arg(argc, argv, 1, 1);
    long long batches = bench_arg(argc, argv, 2, 1000);
    unsigned batch = (unsigned)bench_arg(argc, argv, 3, 64);
    size_t size = (size_t)bench_arg(argc, argv, 4, 0);
    if (batch < 1 || batch > 100000)
        bench_die("BATCH must be 1..100000");
    if (size && (size < BENCH_STAMP_MIN || size > 1000000))
        bench_die("SIZE must be 0 or 16..1000000");

    struct queue *queues = aligned_alloc(64, (size_t)threads * sizeof *queues);
    struct worker *workers = calloc((size_t)threads, sizeof *workers);
    if (!queues || !workers)
        bench_die("out of memory");
    memset(queues, 0, (size_t)threads * sizeof *queues);
    atomic_store(&batches_left, batches * threads);
    for (int t = 0; t < threads; t++)
        workers[t] = (struct worker){.id = t, .batches = batches, .batch = batch,
                                     .size = size, .in = &queues[t], .out = &queues[(t + 1) % threads]};
    bench_run_threads(threads, run, workers, sizeof *workers);

    uint64_t sum = 0;
    unsigned long bad = 0;
    for (int t = 0; t < threads; t++) {
        sum += workers[t].sum;
        bad += workers[t].bad;
    }
    free(workers);
    free(queues);
    printf("xmalloc threads=%d batches=%lld batch=%u size=%zu sum=%llu bad=%lu\n", threads, batches,
           batch, size, (unsigned long long)sum, bad);
    return bad != 0;
}
