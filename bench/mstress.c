/* A mixed stress in the manner of mstress and rptest: varied sizes, blocks
 * moving between threads, and a working set that grows and shrinks.
 *
 * Each of THREADS threads has LIVE slots.  At step s the active part of
 * its slots is the first target(s) of them, where target rises from LIVE/10
 * to LIVE and falls back, CYCLES times over the run.  A step picks a random
 * slot: inside the active part its block is replaced by a new one (16 B to
 * 1 KiB mostly, some up to 16 KiB, a few up to 256 KiB), or one time in
 * eight resized to the new size with realloc (whose copy is checked);
 * outside it, its block is freed.  One new block in eight is swapped into a shared exchange
 * array instead, and the slot takes whatever block another thread left
 * there, so blocks are freed by threads that did not allocate them.
 *
 *   mstress THREADS STEPS [LIVE=10000] [CYCLES=4]
 *
 * Prints "mstress threads=T sum=... lost=0 bad=0": sum covers the blocks
 * allocated (a fixed sequence per thread); lost is what was allocated but
 * not seen again when freed, so it is 0 unless blocks were damaged. */
#include "bench.h"

#include <stdatomic.h>

#define EXCHANGE 256

static _Atomic(void *) exchange[EXCHANGE];

struct worker {
    int id;
    long long steps;
    size_t live;
    int cycles;
    uint64_t allocated, freed;
    unsigned long bad;
};

static size_t mixed_size(bench_rng *r)
{
    uint32_t c = bench_below(r, 100);
    if (c < 85)
        return bench_log_between(r, 16, 1024);
    if (c < 99)
        return bench_log_between(r, 1025, 16384);
    return bench_log_between(r, 16385, 262144);
}

static void release(struct worker *w, void *p)
{
    if (!p)
        return;
    w->freed += bench_check(p, &w->bad);
    free(p);
}

static void *run(void *arg)
{
    struct worker *w = arg;
    bench_rng r = bench_rng_seed(0x3e55 + (uint64_t)w->id);
    void **slot = calloc(w->live, sizeof *slot);
    if (!slot)
        bench_die("out of memory");
    uint64_t tag = ((uint64_t)w->id + 1) << 40;
    long long period = w->steps / w->cycles;
    if (period < 2)
        period = 2;
    size_t lo = w->live / 10 + 1;
    for (long long s = 0; s < w->steps; s++) {
        /* Triangle wave: lo -> live -> lo over each period. */
        long long phase = s % period, half = period / 2;
        long long rise = phase < half ? phase : period - phase;
        size_t target = lo + (size_t)((double)(w->live - lo) * (double)rise / (double)half);
        size_t k = bench_below(&r, (uint32_t)w->live);
        if (k < target) {
            size_t size = mixed_size(&r);
            void *p;
            /* Drawn whatever the slot holds: what the exchange left there
             * depends on timing, and the sequence of sizes must not. */
            int resize = bench_below(&r, 8) == 0;
            if (resize && slot[k]) {
                uint64_t head[2];
                w->freed += bench_check(slot[k], &w->bad);
                memcpy(head, slot[k], sizeof head);
                p = realloc(slot[k], size);
                if (!p)
                    bench_die("out of memory");
                if (memcmp(p, head, sizeof head) != 0)
                    w->bad++;
            } else {
                p = bench_xmalloc(size);
                release(w, slot[k]);
            }
            bench_stamp(p, size, tag);
            w->allocated += tag++;
            if (bench_below(&r, 8) == 0)
                p = atomic_exchange(&exchange[bench_below(&r, EXCHANGE)], p);
            slot[k] = p;
        } else if (slot[k]) {
            release(w, slot[k]);
            slot[k] = NULL;
        }
    }
    for (size_t k = 0; k < w->live; k++)
        release(w, slot[k]);
    free(slot);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s THREADS STEPS [LIVE] [CYCLES]\n", argv[0]);
        return 2;
    }
    int threads = bench_threads_arg(argc, argv, 1, 1);
    long long steps = bench_arg(argc, argv, 2, 1000000);
    size_t live = (size_t)bench_arg(argc, argv, 3, 10000);
    int cycles = (int)bench_arg(argc, argv, 4, 4);
    if (live < 10 || live > 100000000 || cycles < 1)
        bench_die("bad arguments");

    struct worker *workers = calloc((size_t)threads, sizeof *workers);
    if (!workers)
        bench_die("out of memory");
    for (int t = 0; t < threads; t++)
        workers[t] = (struct worker){.id = t, .steps = steps, .live = live, .cycles = cycles};
    bench_run_threads(threads, run, workers, sizeof *workers);

    uint64_t allocated = 0, freed = 0;
    unsigned long bad = 0;
    for (int t = 0; t < threads; t++) {
        allocated += workers[t].allocated;
        freed += workers[t].freed;
        bad += workers[t].bad;
    }
    for (int i = 0; i < EXCHANGE; i++) {
        void *p = atomic_exchange(&exchange[i], NULL);
        if (p) {
            freed += bench_check(p, &bad);
            free(p);
        }
    }
    free(workers);
    printf("mstress threads=%d steps=%lld live=%zu sum=%llu lost=%llu bad=%lu\n", threads, steps,
           live, (unsigned long long)allocated, (unsigned long long)(allocated - freed), bad);
    return bad != 0 || allocated != freed;
}
