/* glibc's malloc benchmark (benchtests/bench-malloc-thread), in its
 * fixed-work form.
 *
 * Each of THREADS threads keeps a working set of WSET slots and does ITERS
 * steps: pick a random slot, free its block, allocate a new one there.
 * Sizes come from a table of 8000 sizes of 4 B..32 KiB drawn once, with
 * an inverse-square density as in glibc's benchmark: half the blocks are
 * under 8 bytes, one in a hundred is over 400.  No block leaves its
 * thread.
 *
 *   malloc_thread THREADS ITERS [WSET=1024]
 *
 * Work is fixed per thread, so the time at 2 threads against 1 shows the
 * scaling.  Prints "malloc_thread threads=T ... sum=... lost=0 bad=0". */
#include "bench.h"

#define SIZES 8000
#define MIN_SIZE 4
#define MAX_SIZE 32768

static uint32_t size_table[SIZES];

struct worker {
    int id;
    long long iters;
    unsigned wset;
    uint64_t allocated, freed;
    unsigned long bad;
};

static void *run(void *arg)
{
    struct worker *w = arg;
    bench_rng r = bench_rng_seed(0x61b3 + (uint64_t)w->id);
    uint64_t tag = ((uint64_t)w->id + 1) << 40;
    struct bench_sealed *ws = calloc(w->wset, sizeof *ws);
    if (!ws)
        bench_die("out of memory");
    for (long long i = 0; i < w->iters; i++) {
        struct bench_sealed *s = &ws[bench_below(&r, w->wset)];
        bench_sealed_free(s, &w->freed, &w->bad);
        w->allocated += bench_sealed_alloc(s, size_table[bench_below(&r, SIZES)], tag++);
    }
    for (unsigned i = 0; i < w->wset; i++)
        bench_sealed_free(&ws[i], &w->freed, &w->bad);
    free(ws);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s THREADS ITERS [WSET]\n", argv[0]);
        return 2;
    }
    int threads = bench_threads_arg(argc, argv, 1, 1);
    long long iters = bench_arg(argc, argv, 2, 1000000);
    long long wset = bench_arg(argc, argv, 3, 1024);
    if (wset < 1 || wset > 10000000)
        bench_die("WSET must be 1..10000000");

    /* Inverse transform of the density c/x^2 on [MIN_SIZE, MAX_SIZE]. */
    bench_rng r = bench_rng_seed(0x9c1b);
    for (int i = 0; i < SIZES; i++) {
        double u = (double)(bench_next(&r) >> 11) / (double)(1ull << 53);
        double inv = 1.0 / MIN_SIZE - u * (1.0 / MIN_SIZE - 1.0 / MAX_SIZE);
        size_table[i] = (uint32_t)(1.0 / inv);
    }

    struct worker *workers = calloc((size_t)threads, sizeof *workers);
    if (!workers)
        bench_die("out of memory");
    for (int t = 0; t < threads; t++)
        workers[t] = (struct worker){.id = t, .iters = iters, .wset = (unsigned)wset};
    bench_run_threads(threads, run, workers, sizeof *workers);

    uint64_t allocated = 0, freed = 0;
    unsigned long bad = 0;
    for (int t = 0; t < threads; t++) {
        allocated += workers[t].allocated;
        freed += workers[t].freed;
        bad += workers[t].bad;
    }
    free(workers);
    printf("malloc_thread threads=%d iters=%lld wset=%lld sum=%llu lost=%llu bad=%lu\n", threads,
           iters, wset, (unsigned long long)allocated, (unsigned long long)(allocated - freed), bad);
    return bad != 0 || allocated != freed;
}
