/* False sharing, after the cache-thrash and cache-scratch programs of the
 * Hoard benchmarks.  Each of THREADS threads repeats ITER times: allocate an
 * object of SIZE bytes, write every byte of it WRITES times, free it.
 *
 *   thrash   the threads allocate their objects independently.  An
 *            allocator that hands neighbouring small blocks to different
 *            threads makes their writes fight over one cache line
 *            ("active" false sharing).
 *   scratch  the main thread first allocates one object per thread, side
 *            by side, and each thread starts by freeing the one it is given.
 *            An allocator that serves the thread's next request with that
 *            block keeps the threads writing to one cache line ("passive"
 *            false sharing).
 *
 *   cache thrash|scratch THREADS ITER WRITES [SIZE=8]
 *
 * Prints "cache MODE threads=T sum=...". */
#include "bench.h"

struct worker {
    long long iter, writes;
    size_t size;
    void *given; /* scratch: the object to free first */
    uint64_t sum;
};

static void *run(void *arg)
{
    struct worker *w = arg;
    free(w->given);
    for (long long i = 0; i < w->iter; i++) {
        volatile unsigned char *p = bench_xmalloc(w->size);
        for (size_t k = 0; k < w->size; k++)
            p[k] = 0;
        for (long long j = 0; j < w->writes; j++)
            for (size_t k = 0; k < w->size; k++)
                p[k] = (unsigned char)(p[k] + 1);
        for (size_t k = 0; k < w->size; k++)
            w->sum += p[k];
        free((void *)p);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s thrash|scratch THREADS ITER WRITES [SIZE]\n", argv[0]);
        return 2;
    }
    int scratch;
    if (!strcmp(argv[1], "scratch"))
        scratch = 1;
    else if (!strcmp(argv[1], "thrash"))
        scratch = 0;
    else
        bench_die("mode must be thrash or scratch");
    int threads = bench_threads_arg(argc, argv, 2, 1);
    long long iter = bench_arg(argc, argv, 3, 1000);
    long long writes = bench_arg(argc, argv, 4, 10000);
    size_t size = (size_t)bench_arg(argc, argv, 5, 8);
    if (size < 1)
        bench_die("SIZE must be at least 1");

    struct worker *workers = calloc((size_t)threads, sizeof *workers);
    if (!workers)
        bench_die("out of memory");
    for (int t = 0; t < threads; t++) {
        workers[t] = (struct worker){.iter = iter, .writes = writes, .size = size};
        if (scratch)
            workers[t].given = bench_xmalloc(size); /* side by side */
    }
    bench_run_threads(threads, run, workers, sizeof *workers);
    uint64_t sum = 0;
    for (int t = 0; t < threads; t++)
        sum += workers[t].sum;
    free(workers);
    /* Every byte ends at WRITES mod 256, in every object of every thread. */
    uint64_t expect = (uint64_t)threads * (uint64_t)iter * size * (uint64_t)(writes & 255);
    if (sum != expect)
        fprintf(stderr, "cache: sum %llu, expected %llu\n", (unsigned long long)sum,
                (unsigned long long)expect);
    printf("cache %s threads=%d iter=%lld writes=%lld size=%zu sum=%llu\n", argv[1], threads, iter,
           writes, size, (unsigned long long)sum);
    return sum != expect;
}
