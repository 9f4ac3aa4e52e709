/* Single-thread churn with the size mix of small-object programs (cfrac,
 * espresso, interpreters): mostly 16..256 bytes, some KiB, a few larger
 * (bench_small_mix), freed in one of three orders:
 *
 *   lifo    a stack: bursts of 1..64 pushes (malloc) and pops (free), the
 *           way temporaries of recursive code come and go;
 *   fifo    a queue of LIVE blocks: each new block evicts the oldest;
 *   random  LIVE slots: each step replaces a random one; 3% of the steps
 *           realloc a live block to a new size instead.
 *
 *   churn MODE OPS [LIVE]      OPS mallocs in all; LIVE default 5000
 *
 * Prints "churn MODE ops=OPS sum=... bad=0". */
#include "bench.h"

static unsigned long bad;
static uint64_t sum;

static void *make(bench_rng *r, uint64_t tag)
{
    size_t size = bench_small_mix(r);
    void *p = bench_xmalloc(size);
    bench_stamp(p, size, tag);
    return p;
}

static void drop(void *p)
{
    sum += bench_check(p, &bad);
    free(p);
}

static void run_lifo(long long ops, size_t cap)
{
    void **stack = bench_xmalloc(cap * sizeof *stack);
    size_t depth = 0;
    bench_rng r = bench_rng_seed(1);
    long long done = 0;
    while (done < ops) {
        size_t burst = bench_between(&r, 1, 64);
        /* Push more often while the stack is shallow, so its depth wanders
         * over the whole range instead of sticking to one end. */
        int push = bench_below(&r, (uint32_t)cap) >= depth;
        if (push) {
            for (size_t i = 0; i < burst && depth < cap && done < ops; i++, done++)
                stack[depth++] = make(&r, (uint64_t)done);
        } else {
            for (size_t i = 0; i < burst && depth > 0; i++)
                drop(stack[--depth]);
        }
    }
    while (depth > 0)
        drop(stack[--depth]);
    free(stack);
}

static void run_fifo(long long ops, size_t live)
{
    void **ring = bench_xmalloc(live * sizeof *ring);
    size_t head = 0, count = 0;
    bench_rng r = bench_rng_seed(2);
    for (long long i = 0; i < ops; i++) {
        if (count == live) {
            drop(ring[head]);
            head = (head + 1) % live;
            count--;
        }
        ring[(head + count) % live] = make(&r, (uint64_t)i);
        count++;
    }
    for (; count > 0; count--, head = (head + 1) % live)
        drop(ring[head]);
    free(ring);
}

static void run_random(long long ops, size_t live)
{
    void **slot = calloc(live, sizeof *slot);
    if (!slot)
        bench_die("out of memory");
    bench_rng r = bench_rng_seed(3);
    for (long long i = 0; i < ops; i++) {
        size_t k = bench_below(&r, (uint32_t)live);
        if (slot[k] && bench_below(&r, 100) < 3) {
            /* realloc to a new size: the prefix survives, the stamp is
             * rewritten for the new size. */
            sum += bench_check(slot[k], &bad);
            size_t size = bench_small_mix(&r);
            void *q = realloc(slot[k], size);
            if (!q)
                bench_die("out of memory");
            bench_stamp(q, size, (uint64_t)i);
            slot[k] = q;
            continue;
        }
        if (slot[k])
            drop(slot[k]);
        slot[k] = make(&r, (uint64_t)i);
    }
    for (size_t k = 0; k < live; k++)
        if (slot[k])
            drop(slot[k]);
    free(slot);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s lifo|fifo|random OPS [LIVE]\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    long long ops = bench_arg(argc, argv, 2, 0);
    size_t live = (size_t)bench_arg(argc, argv, 3, 5000);
    if (live < 1 || live > 100000000)
        bench_die("LIVE must be 1..1e8");
    if (!strcmp(mode, "lifo"))
        run_lifo(ops, live);
    else if (!strcmp(mode, "fifo"))
        run_fifo(ops, live);
    else if (!strcmp(mode, "random"))
        run_random(ops, live);
    else
        bench_die("mode must be lifo, fifo or random");
    printf("churn %s ops=%lld sum=%llu bad=%lu\n", mode, ops, (unsigned long long)sum, bad);
    return bad != 0;
}
