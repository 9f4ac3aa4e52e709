/* The idle scenario: a load spike, then silence.  THREADS threads each
 * allocate MIB/THREADS MiB of mixed 16 B..2 KiB blocks (chained through
 * their second word, so no pointer array adds to the RSS), free them all and
 * exit.  The process then makes no allocator call at all, as a server that
 * has gone quiet, and samples its resident set size every 100 ms for
 * SECONDS seconds: memory an allocator only gives back on a later call
 * never comes back here.
 *
 *   idle [MIB=600] [THREADS=2] [SECONDS=3]
 *
 * Prints "idle mib=MIB threads=THREADS blocks=N sum=... bad=0" on stdout
 * (the same for every allocator) and on stderr one line of RSS in MiB:
 * "metric rss_peak=.. rss_0ms=.. rss_500ms=.. rss_1000ms=.. rss_2000ms=..
 * rss_end=.." (absolute RSS, not above a base). */
#include "bench.h"

#include <time.h>

struct job {
    size_t bytes;
    uint64_t seed;
    size_t blocks;
    uint64_t sum;
    unsigned long bad;
};

static void *spike(void *arg)
{
    struct job *j = arg;
    bench_rng r = bench_rng_seed(j->seed);
    void **head = NULL;
    size_t total = 0;
    while (total < j->bytes) {
        size_t size = bench_between(&r, 16, 2048);
        void **p = bench_xmalloc(size);
        /* Its size, the link, and a check byte at the end. */
        p[0] = (void *)size;
        p[1] = head;
        if (size > 16)
            ((unsigned char *)p)[size - 1] = (unsigned char)(size * 7 + 1);
        head = p;
        total += size;
        j->blocks++;
    }
    /* Oldest first, as a queue drains: turn the chain around. */
    void **prev = NULL;
    while (head) {
        void **next = head[1];
        head[1] = prev;
        prev = head;
        head = next;
    }
    head = prev;
    while (head) {
        void **next = head[1];
        size_t size = (size_t)head[0];
        if (size < 16 || size > 2048 ||
            (size > 16 && ((unsigned char *)head)[size - 1] != (unsigned char)(size * 7 + 1)))
            j->bad++;
        j->sum += size;
        free(head);
        head = next;
    }
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

int main(int argc, char **argv)
{
    size_t mib = (size_t)bench_arg(argc, argv, 1, 600);
    int threads = bench_threads_arg(argc, argv, 2, 2);
    long seconds = (long)bench_arg(argc, argv, 3, 3);
    if (mib < 1 || seconds < 1)
        bench_die("MIB and SECONDS must be at least 1");
    struct job jobs[BENCH_MAX_THREADS];
    memset(jobs, 0, sizeof jobs);
    for (int t = 0; t < threads; t++) {
        jobs[t].bytes = (mib << 20) / (size_t)threads;
        jobs[t].seed = 600 + (uint64_t)t;
    }
    /* Written before the spike, so the report needs no allocation after. */
    static char line[512];
    bench_run_threads(threads, spike, jobs, sizeof jobs[0]);
    long rss[64];
    int n = 0;
    for (long ms = 0; ms <= seconds * 1000 && n < 64; ms += 100) {
        if (ms)
            sleep_ms(100);
        rss[n++] = bench_rss_kib();
    }
    size_t blocks = 0;
    uint64_t sum = 0;
    unsigned long bad = 0;
    for (int t = 0; t < threads; t++) {
        blocks += jobs[t].blocks;
        sum += jobs[t].sum;
        bad += jobs[t].bad;
    }
    /* The report is formatted only now: stdio may allocate. */
    snprintf(line, sizeof line,
             "metric rss_0ms=%.1f rss_500ms=%.1f rss_1000ms=%.1f rss_2000ms=%.1f rss_end=%.1f\n",
             rss[0] / 1024.0, rss[n > 5 ? 5 : n - 1] / 1024.0, rss[n > 10 ? 10 : n - 1] / 1024.0,
             rss[n > 20 ? 20 : n - 1] / 1024.0, rss[n - 1] / 1024.0);
    fputs(line, stderr);
    printf("idle mib=%zu threads=%d blocks=%zu sum=%016llx bad=%lu\n", mib, threads, blocks,
           (unsigned long long)sum, bad);
    return bad != 0;
}
