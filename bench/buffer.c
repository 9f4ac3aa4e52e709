/* The Buffer churn: the allocation pattern of a Node.js program that calls
 * Buffer.alloc in a loop.  Every call asks for 1 B..16 KiB (log-uniform),
 * zero-filled as Buffer.alloc does, and writes into it.  Buffers die young
 * and are freed in batches, the way the garbage collector frees them when
 * their external memory has grown by its limit: the pending ones are freed
 * together once they hold NURSERY MiB (or 65536 of them).  One in 64 survives into a small retained set (RETAINED slots,
 * each new survivor replacing a random old one), which keeps a few pages
 * of every run busy, as a program's long-lived buffers do.
 *
 * What it measures: a purge policy that gives back the pages of a freed
 * batch, only to fault them in again for the next batch, pays it here in
 * minor page faults and system time.
 *
 *   buffer [CALLS=2000000] [NURSERY=48] [RETAINED=512]
 *
 * Prints "buffer calls=CALLS sum=... bad=0". */
#include "bench.h"

static unsigned long bad;
static uint64_t sum;

static void drop(void *p)
{
    sum += bench_check(p, &bad);
    free(p);
}

int main(int argc, char **argv)
{
    long long calls = bench_arg(argc, argv, 1, 2000000);
    size_t nursery = (size_t)bench_arg(argc, argv, 2, 48) << 20;
    size_t retained = (size_t)bench_arg(argc, argv, 3, 512);
    if (nursery < 1 || retained < 1)
        bench_die("NURSERY and RETAINED must be at least 1");
    enum { YOUNG_MAX = 65536 };
    void **young = bench_xmalloc(YOUNG_MAX * sizeof *young);
    void **old = calloc(retained, sizeof *old);
    if (!old)
        bench_die("out of memory");
    size_t nyoung = 0, young_bytes = 0;
    bench_rng r = bench_rng_seed(16384);
    for (long long i = 0; i < calls; i++) {
        /* Sizes below the 16-byte stamp are rounded up to it: the stamp is
         * what lets every free check the block. */
        size_t size = bench_log_between(&r, 1, 16384);
        if (size < BENCH_STAMP_MIN)
            size = BENCH_STAMP_MIN;
        unsigned char *p = calloc(1, size);
        if (!p)
            bench_die("out of memory");
        for (size_t k = 16; k < size; k += 4096)
            if (p[k])
                bad++; /* calloc handed out dirty memory */
        bench_stamp(p, size, (uint64_t)i);
        if (bench_below(&r, 64) == 0) {
            size_t slot = bench_below(&r, (uint32_t)retained);
            if (old[slot])
                drop(old[slot]);
            old[slot] = p;
            continue;
        }
        young[nyoung++] = p;
        young_bytes += size;
        if (young_bytes >= nursery || nyoung == YOUNG_MAX) {
            while (nyoung > 0)
                drop(young[--nyoung]);
            young_bytes = 0;
        }
    }
    while (nyoung > 0)
        drop(young[--nyoung]);
    for (size_t i = 0; i < retained; i++)
        if (old[i])
            drop(old[i]);
    free(young);
    free(old);
    printf("buffer calls=%lld sum=%016llx bad=%lu\n", calls, (unsigned long long)sum, bad);
    return bad != 0;
}
