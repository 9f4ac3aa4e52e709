/* Large blocks.  Every mode touches the memory it gets, one write per
 * 4 KiB page at least, as a program that uses its buffers would, so the
 * cost of fresh pages (mmap, page faults, zeroing) against reused ones
 * shows in the time, and what the allocator keeps shows in the peak RSS.
 *
 *   random   ITER times, replace one of 4 live blocks by a block of
 *            64 KiB .. 64 MiB (log-uniform: each doubling equally likely)
 *            and touch every page of it.
 *   double   ITER times, grow a buffer from 64 B to 64 MiB by realloc,
 *            doubling, filling the new half each time (a growing array);
 *            then free it.
 *   step     ITER times, grow a buffer from 0 to 16 MiB by realloc, 256
 *            bytes at a time, writing each step's bytes (a string builder
 *            or a vector growing without reserve); then free it.
 *   calloc   ITER times, calloc a zeroed block of 5 .. 25 MiB, check that
 *            it reads as zero, fill a page-strided pattern, free it.
 *
 *   large random|double|step|calloc ITER
 *
 * Prints "large MODE iter=ITER sum=... bad=0". */
#include "bench.h"

#define PAGE 4096

static uint64_t sum;
static unsigned long bad;

/* Write one byte in every page of [p+from, p+to), and the last byte. */
static void touch(unsigned char *p, size_t from, size_t to, unsigned char v)
{
    if (from >= to)
        return;
    for (size_t i = from; i < to; i += PAGE)
        p[i] = v;
    p[to - 1] = v;
}

static void run_random(long long iter)
{
    enum { LIVE = 4 };
    unsigned char *live[LIVE] = {0};
    size_t size[LIVE] = {0};
    bench_rng r = bench_rng_seed(64);
    for (long long i = 0; i < iter; i++) {
        int k = (int)bench_below(&r, LIVE);
        if (live[k]) {
            sum += live[k][0] + live[k][size[k] - 1];
            free(live[k]);
        }
        size[k] = bench_log_between(&r, 64 << 10, 64 << 20);
        live[k] = bench_xmalloc(size[k]);
        touch(live[k], 0, size[k], (unsigned char)i);
    }
    for (int k = 0; k < LIVE; k++)
        free(live[k]);
}

static void run_double(long long iter)
{
    for (long long i = 0; i < iter; i++) {
        unsigned char *p = NULL;
        size_t have = 0;
        for (size_t n = 64; n <= ((size_t)64 << 20); n *= 2) {
            p = realloc(p, n);
            if (!p)
                bench_die("out of memory");
            if (have && p[have - 1] != (unsigned char)(have + i))
                bad++;
            memset(p + have, 0, n - have < PAGE ? n - have : PAGE);
            touch(p, have, n, (unsigned char)(n + i));
            have = n;
        }
        sum += p[have - 1];
        free(p);
    }
}

static void run_step(long long iter)
{
    enum { STEP = 256 };
    const size_t limit = (size_t)16 << 20;
    for (long long i = 0; i < iter; i++) {
        unsigned char *p = NULL;
        size_t len = 0;
        while (len < limit) {
            p = realloc(p, len + STEP);
            if (!p)
                bench_die("out of memory");
            memset(p + len, (int)(unsigned char)(len / STEP + i), STEP);
            len += STEP;
        }
        /* Check a sample of the steps survived every move. */
        for (size_t at = 0; at < len; at += 4099 * STEP / 16) {
            size_t step = at / STEP;
            if (p[at] != (unsigned char)(step + i))
                bad++;
        }
        sum += len;
        free(p);
    }
}

static void run_calloc(long long iter)
{
    bench_rng r = bench_rng_seed(25);
    for (long long i = 0; i < iter; i++) {
        size_t n = bench_between(&r, 5 << 20, 25 << 20);
        unsigned char *p = calloc(1, n);
        if (!p)
            bench_die("out of memory");
        for (int k = 0; k < 64; k++)
            if (p[bench_below(&r, (uint32_t)n)] != 0)
                bad++;
        touch(p, 0, n, (unsigned char)(i | 1));
        sum += p[0] + n;
        free(p);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s random|double|step|calloc ITER\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    long long iter = bench_arg(argc, argv, 2, 10);
    if (!strcmp(mode, "random"))
        run_random(iter);
    else if (!strcmp(mode, "double"))
        run_double(iter);
    else if (!strcmp(mode, "step"))
        run_step(iter);
    else if (!strcmp(mode, "calloc"))
        run_calloc(iter);
    else
        bench_die("mode must be random, double, step or calloc");
    printf("large %s iter=%lld sum=%llu bad=%lu\n", mode, iter, (unsigned long long)sum, bad);
    return bad != 0;
}
