/* The allocator's fast path: N malloc+free pairs of one SIZE, in a loop.
 * scripts/bench counts the instructions of a run with N pairs and of one
 * with 2N under valgrind --tool=callgrind; the difference divided by N is
 * the cost of one pair with start-up and exit cancelled out, this harness
 * included: the loop and the two PLT jumps, about 10 instructions per pair
 * in 'pair' mode and 14 in 'batch' mode.  (In a plain run it is a
 * throughput test of the same loop.)
 *
 * 'batch' mode allocates 32 blocks and then frees them, N/32 times, which
 * walks a thread cache deeper than a single pair does.
 *
 *   fastpath SIZE N [pair|batch]
 *
 * Prints "fastpath size=SIZE n=N". */
#include "bench.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s SIZE N [pair|batch]\n", argv[0]);
        return 2;
    }
    size_t size = (size_t)bench_arg(argc, argv, 1, 16);
    long long n = bench_arg(argc, argv, 2, 1000000);
    int batch = argc > 3 && !strcmp(argv[3], "batch");
    /* volatile: the compiler must keep every call (it is also built with
     * -fno-builtin, which stops it treating malloc/free as known). */
    void *volatile sink;
    if (batch) {
        void *p[32];
        for (long long i = 0; i < n; i += 32) {
            for (int k = 0; k < 32; k++)
                sink = p[k] = malloc(size);
            for (int k = 0; k < 32; k++)
                free(p[k]);
        }
    } else {
        for (long long i = 0; i < n; i++) {
            sink = malloc(size);
            free(sink);
        }
    }
    (void)sink;
    printf("fastpath size=%zu n=%lld %s\n", size, n, batch ? "batch" : "pair");
    return 0;
}
