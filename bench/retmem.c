/* Returning memory to the OS: allocate MIB MiB of small blocks (16..256 B,
 * chained through their first word, so no pointer array adds to the RSS),
 * free them all (every other block first, then the rest), and watch the
 * resident set size:
 *
 *   base    RSS before the allocations;
 *   peak    RSS with every block live;
 *   freed   RSS just after the last free;
 *   1s      the lowest RSS seen in the second after it (sampled every
 *           10 ms, with no allocator calls in between), and the
 *           milliseconds until RSS first came within 10% of MIB of base;
 *   trim    RSS after malloc_trim(0).
 *
 *   retmem [MIB=1024]
 *
 * Prints one line of "key=value" pairs, RSS in MiB above base.  The line
 * depends on the allocator, so scripts/bench reports it in a table of its
 * own instead of comparing it. */
#include "bench.h"

#include <malloc.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t mib = (size_t)bench_arg(argc, argv, 1, 1024);
    if (mib < 1)
        bench_die("MIB must be at least 1");
    long base = bench_rss_kib();
    bench_rng r = bench_rng_seed(1024);
    void *head = NULL;
    size_t total = 0, count = 0;
    while (total < (mib << 20)) {
        size_t size = bench_between(&r, 16, 256);
        void **p = bench_xmalloc(size);
        memset(p, (int)(size & 0xff), size);
        p[0] = head;
        head = p;
        total += size;
        count++;
    }
    long peak = bench_rss_kib();
    /* Every other block, then the rest. */
    void *rest = NULL;
    for (void **p = head; p;) {
        void **next = p[0];
        if (next) {
            void **after = next[0];
            next[0] = rest;
            rest = next;
            free(p);
            p = after;
        } else {
            free(p);
            p = NULL;
        }
    }
    for (void **p = rest; p;) {
        void **next = p[0];
        free(p);
        p = next;
    }
    double t0 = now();
    long freed = bench_rss_kib(), low = freed;
    long goal = (long)(mib * 1024 / 10);
    double reached = freed - base <= goal ? 0 : -1;
    while (now() - t0 < 1.0) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        long rss = bench_rss_kib();
        if (rss < low)
            low = rss;
        if (reached < 0 && rss - base <= goal)
            reached = now() - t0;
    }
    malloc_trim(0);
    long trimmed = bench_rss_kib();
    printf("retmem mib=%zu blocks=%zu base=%.1f peak=%.1f freed=%.1f low1s=%.1f", mib, count,
           base / 1024.0, (peak - base) / 1024.0, (freed - base) / 1024.0, (low - base) / 1024.0);
    if (reached >= 0)
        printf(" under10pct_ms=%.0f", reached * 1000);
    else
        printf(" under10pct_ms=never");
    printf(" trim=%.1f\n", (trimmed - base) / 1024.0);
    return 0;
}
