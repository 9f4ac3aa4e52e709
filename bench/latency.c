/* The latency churn: one thread times every malloc and free of a churn
 * whose working set grows to LIVE blocks and shrinks back to none, CYCLES
 * times.  Sizes: mostly 16 B..1 KiB, 2% 4..64 KiB, and 1 in 10000 1..5 MiB.
 * While it grows, 3 steps in 4 allocate and the others free a random live
 * block; while it shrinks, the reverse.  A server's slowest requests are
 * made of the slowest calls here: flushes, run releases, merges and purges
 * done inside whichever call crosses a threshold.
 *
 *   latency [LIVE=200000] [CYCLES=2]
 *
 * Prints "latency live=LIVE cycles=CYCLES mallocs=N sum=... bad=0" on stdout
 * (the same for every allocator) and on stderr, in ns and including two
 * clock reads: "metric malloc_p50=.. malloc_p99=.. malloc_p999=..
 * malloc_max=.. free_p50=.. free_p99=.. free_p999=.. free_max=..". */
#include "bench.h"

#include <stdbool.h>
#include <sys/mman.h>
#include <time.h>

static unsigned long bad;
static uint64_t sum;

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t pick_size(bench_rng *r)
{
    uint32_t c = bench_below(r, 10000);
    if (c == 0)
        return bench_between(r, 1 << 20, 5 << 20);
    if (c <= 200)
        return bench_between(r, 4 << 10, 64 << 10);
    return bench_log_between(r, 16, 1024);
}

/* The timings live outside the allocator under test. */
static uint32_t *map_array(size_t n)
{
    void *p = mmap(NULL, n * sizeof(uint32_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED)
        bench_die("mmap failed");
    return p;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint32_t pct(const uint32_t *v, size_t n, double p)
{
    size_t i = (size_t)(p * (double)(n - 1));
    return v[i];
}

int main(int argc, char **argv)
{
    size_t live_max = (size_t)bench_arg(argc, argv, 1, 200000);
    long long cycles = bench_arg(argc, argv, 2, 2);
    if (live_max < 1 || cycles < 1)
        bench_die("LIVE and CYCLES must be at least 1");
    /* Each cycle takes about 2 * LIVE mallocs (grow: +2 net per 4 steps,
     * shrink: -2): room for 3 * LIVE per cycle. */
    size_t cap = (size_t)cycles * live_max * 3 + 16;
    uint32_t *tm = map_array(cap), *tf = map_array(cap);
    void **slots = (void **)map_array(live_max * 2);
    size_t nm = 0, nf = 0, live = 0;
    bench_rng r = bench_rng_seed(200000);
    for (long long c = 0; c < cycles; c++) {
        for (int shrink = 0; shrink < 2; shrink++) {
            while (shrink ? live > 0 : live < live_max) {
                bool alloc = bench_below(&r, 4) < 3 ? !shrink : shrink;
                if (live == 0)
                    alloc = true;
                if (alloc && live < live_max && nm < cap) {
                    size_t size = pick_size(&r);
                    uint64_t t0 = now_ns();
                    void *p = malloc(size);
                    uint64_t t1 = now_ns();
                    if (!p)
                        bench_die("out of memory");
                    tm[nm++] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
                    bench_stamp(p, size, nm);
                    slots[live++] = p;
                } else if (live > 0) {
                    size_t i = bench_below(&r, (uint32_t)live);
                    void *p = slots[i];
                    slots[i] = slots[--live];
                    sum += bench_check(p, &bad);
                    uint64_t t0 = now_ns();
                    free(p);
                    uint64_t t1 = now_ns();
                    tf[nf++] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
                }
            }
        }
    }
    qsort(tm, nm, sizeof *tm, cmp_u32);
    qsort(tf, nf, sizeof *tf, cmp_u32);
    fprintf(stderr,
            "metric malloc_p50=%u malloc_p99=%u malloc_p999=%u malloc_max=%u free_p50=%u "
            "free_p99=%u free_p999=%u free_max=%u\n",
            pct(tm, nm, 0.5), pct(tm, nm, 0.99), pct(tm, nm, 0.999), tm[nm - 1], pct(tf, nf, 0.5),
            pct(tf, nf, 0.99), pct(tf, nf, 0.999), tf[nf - 1]);
    printf("latency live=%zu cycles=%lld mallocs=%zu sum=%016llx bad=%lu\n", live_max, cycles, nm,
           (unsigned long long)sum, bad);
    return bad != 0;
}
