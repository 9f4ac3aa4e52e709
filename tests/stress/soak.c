/* Soak: a long mixed multithreaded workload with verification and a bound
 * on memory use.
 *
 * Each thread keeps a table of blocks of mixed sizes (tiny to a few MiB)
 * made by malloc, calloc, memalign, posix_memalign and aligned_alloc, each
 * filled with the pattern of a unique id.  It resizes them, frees them and
 * passes them to other threads through bounded inboxes; the receiver
 * verifies them and keeps, resizes or frees them.  Every block is verified
 * before each realloc and free, so blocks handed out twice, overlapping
 * blocks and lost bytes are counted as corruptions (the first few are
 * described on stderr).
 *
 * Memory: the requested bytes of all live blocks (in the tables and the
 * inboxes) are counted, and the peak resident set (VmHWM) must stay below
 * 3 times their peak plus 64 MiB: fragmentation, caches and memory that is
 * never returned would push it over.
 *
 * The last line of output gives the figures: operations, threads, seconds,
 * peak RSS and its bound, corruptions.  Exit status 0 when there was no
 * corruption and the bound held.
 *
 * usage: soak [operations] [threads]       a fixed number of operations
 *        soak --seconds S [threads]        as many as fit in S seconds
 * (CMALLOC_TEST_QUICK=1: a tenth of either)
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "validate_hook.h"

#define SLOTS 512
#define INBOX 256
#define MAX_THREADS 64
#define REPORT_MAX 10

struct item {
    unsigned char *p;
    size_t n;
    uint64_t id;
};

/* A bounded inbox: a thread that finds it full keeps its block. */
struct inbox {
    pthread_mutex_t lock;
    struct item it[INBOX];
    int len;
};

static struct inbox inboxes[MAX_THREADS];
static int nthreads = 4;
static long ops_per_thread;      /* fixed-count mode */
static double stop_at;           /* timed mode: CLOCK_MONOTONIC seconds */
static atomic_uint_fast64_t next_id = 1;
static atomic_long total_ops, corruptions;
static atomic_size_t live_bytes, peak_live;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void count_live(size_t add, size_t sub)
{
    size_t live = atomic_fetch_add_explicit(&live_bytes, add - sub, memory_order_relaxed) + add - sub;
    size_t peak = atomic_load_explicit(&peak_live, memory_order_relaxed);
    while (live > peak &&
           !atomic_compare_exchange_weak_explicit(&peak_live, &peak, live, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

static size_t random_size(uint64_t *rng)
{
    uint64_t r = tu_rand(rng);
    unsigned pick = (unsigned)(r % 1000);
    r >>= 10;
    if (pick < 500)
        return (size_t)(r % 129);
    if (pick < 800)
        return 129 + (size_t)(r % 3968);
    if (pick < 950)
        return 4097 + (size_t)(r % (61440));
    if (pick < 995)
        return 65537 + (size_t)(r % (983040));
    return MiB + 1 + (size_t)(r % (3 * MiB));
}

static void fill(const struct item *it)
{
    tu_fill_sparse(it->p, it->n, it->id);
}

static void corrupted(const struct item *it, size_t bad, const char *when)
{
    if (atomic_fetch_add(&corruptions, 1) < REPORT_MAX)
        fprintf(stderr, "soak: block %p (%zu bytes, id %llu) corrupted at offset %zu %s\n",
                (void *)it->p, it->n, (unsigned long long)it->id, bad, when);
}

static void verify(const struct item *it, const char *when)
{
    size_t bad = tu_verify_sparse(it->p, it->n, it->n, it->id);
    if (bad != (size_t)-1)
        corrupted(it, bad, when);
}

static void new_block(struct item *it, uint64_t *rng)
{
    unsigned kind = (unsigned)(tu_rand(rng) % 16);
    size_t align = 16;
    void *p = NULL;
    it->n = random_size(rng);
    it->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
    switch (kind) {
    case 0:
        p = calloc(1, it->n);
        TU_CHECK(p != NULL, "calloc(%zu)", it->n);
        TU_CHECK(tu_first_nonzero(p, it->n) == (size_t)-1, "calloc(%zu) not zeroed", it->n);
        break;
    case 1:
        align = (size_t)32 << (tu_rand(rng) % 9);
        p = memalign(align, it->n);
        break;
    case 2:
        align = sizeof(void *) << (tu_rand(rng) % 10);
        TU_CHECK(posix_memalign(&p, align, it->n) == 0, "posix_memalign(%zu, %zu)", align,
                 it->n);
        break;
    case 3:
        align = (size_t)64 << (tu_rand(rng) % 7);
        p = aligned_alloc(align, it->n);
        break;
    default:
        p = malloc(it->n);
        break;
    }
    TU_CHECK(p != NULL, "allocation of %zu bytes (kind %u) failed", it->n, kind);
    TU_CHECK(tu_aligned(p, align < 16 ? 16 : align), "%p not aligned to %zu", p, align);
    TU_CHECK(malloc_usable_size(p) >= it->n, "usable size %zu < %zu", malloc_usable_size(p),
             it->n);
    it->p = p;
    fill(it);
    count_live(it->n, 0);
}

static void free_block(struct item *it)
{
    verify(it, "before free");
    free(it->p);
    count_live(0, it->n);
    it->p = NULL;
}

static void resize_block(struct item *it, uint64_t *rng)
{
    size_t n2 = (tu_rand(rng) & 1) ? random_size(rng) : it->n + it->n / 4 + 1;
    size_t keep = it->n < n2 ? it->n : n2, bad;
    unsigned char *q;
    verify(it, "before realloc");
    if (n2 == 0)
        n2 = 1;
    q = realloc(it->p, n2);
    TU_CHECK(q != NULL, "realloc(%zu -> %zu)", it->n, n2);
    TU_CHECK(tu_aligned(q, 16) && malloc_usable_size(q) >= n2, "realloc(%zu) = %p, usable %zu",
             n2, (void *)q, malloc_usable_size(q));
    bad = tu_verify_sparse(q, keep, it->n, it->id);
    count_live(n2, it->n);
    it->p = q;
    if (bad != (size_t)-1)
        corrupted(it, bad, "after realloc");
    it->n = n2;
    it->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
    fill(it);
}

/* Moves the block to another thread's inbox; false when that one is full. */
static int send(struct item *it, int to)
{
    struct inbox *box = &inboxes[to];
    int sent = 0;
    pthread_mutex_lock(&box->lock);
    if (box->len < INBOX) {
        box->it[box->len++] = *it;
        sent = 1;
    }
    pthread_mutex_unlock(&box->lock);
    if (sent)
        it->p = NULL;
    return sent;
}

/* Takes everything in the thread's inbox: each block is verified, then kept
 * (replacing a block of the table, which is freed), resized or freed. */
static long receive(int self, struct item *slot, uint64_t *rng)
{
    struct item got[INBOX];
    int n, i;
    struct inbox *box = &inboxes[self];
    pthread_mutex_lock(&box->lock);
    n = box->len;
    memcpy(got, box->it, sizeof got[0] * (size_t)n);
    box->len = 0;
    pthread_mutex_unlock(&box->lock);
    for (i = 0; i < n; i++) {
        struct item *it = &got[i];
        unsigned what = (unsigned)(tu_rand(rng) % 3);
        verify(it, "after crossing threads");
        if (what == 0) {
            struct item *dst = &slot[tu_rand(rng) % SLOTS];
            if (dst->p)
                free_block(dst);
            *dst = *it;
        } else if (what == 1) {
            resize_block(it, rng);
            free_block(it);
        } else {
            free_block(it);
        }
    }
    return n;
}

/* At the end: what is left in an inbox is verified and freed. */
static void drain(int self)
{
    struct inbox *box = &inboxes[self];
    while (box->len > 0)
        free_block(&box->it[--box->len]);
}

static int done(long ops)
{
    if (stop_at > 0)
        return (ops & 1023) == 0 && now() >= stop_at;
    return ops >= ops_per_thread;
}

static void *worker(void *arg)
{
    int self = (int)(intptr_t)arg;
    uint64_t rng = tu_seed((uint64_t)self + 1, 0x50A4);
    struct item *slot = calloc(SLOTS, sizeof *slot);
    long ops = 0;
    size_t i;
    TU_CHECK(slot != NULL, "calloc");
    while (!done(ops)) {
        struct item *it = &slot[tu_rand(&rng) % SLOTS];
        unsigned what = (unsigned)(tu_rand(&rng) % 100);
        if (what < 5) {
            ops += receive(self, slot, &rng);
        } else if (!it->p) {
            new_block(it, &rng);
        } else if (what < 15) {
            int to = (int)(tu_rand(&rng) % (uint64_t)nthreads);
            if (to == self || !send(it, to))
                free_block(it);
        } else if (what < 40) {
            resize_block(it, &rng);
        } else {
            free_block(it);
        }
        ops++;
    }
    atomic_fetch_add(&total_ops, ops);
    /* blocks sent to this thread after it stopped are collected by main() */
    for (i = 0; i < SLOTS; i++)
        if (slot[i].p)
            free_block(&slot[i]);
    free(slot);
    return NULL;
}

static size_t vm_hwm_bytes(void)
{
    char line[256];
    size_t kib = 0;
    FILE *f = fopen("/proc/self/status", "r");
    TU_CHECK(f != NULL, "cannot open /proc/self/status");
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %zu kB", &kib) == 1)
            break;
    fclose(f);
    TU_CHECK(kib > 0, "no VmHWM in /proc/self/status");
    return kib * KiB;
}

int main(int argc, char **argv)
{
    pthread_t tid[MAX_THREADS];
    double seconds = 0, start;
    long ops = 2000000;
    size_t hwm, bound;
    int i, arg = 1;
    if (argc > 2 && strcmp(argv[1], "--seconds") == 0) {
        seconds = atof(argv[2]);
        arg = 3;
    } else if (argc > 1) {
        ops = atol(argv[1]);
        arg = 2;
    }
    if (argc > arg)
        nthreads = atoi(argv[arg]);
    TU_CHECK(nthreads >= 2 && nthreads <= MAX_THREADS && ops > 0 && seconds >= 0,
             "usage: soak [operations | --seconds S] [threads 2..%d]", MAX_THREADS);
    if (tu_quick()) {
        ops = ops / 10 + 1;
        seconds /= 10;
    }
    tu_expect_cmalloc();
    for (i = 0; i < nthreads; i++)
        pthread_mutex_init(&inboxes[i].lock, NULL);
    start = now();
    if (seconds > 0)
        stop_at = start + seconds;
    ops_per_thread = ops / nthreads;
    for (i = 0; i < nthreads; i++)
        TU_CHECK(pthread_create(&tid[i], NULL, worker, (void *)(intptr_t)i) == 0,
                 "pthread_create");
    for (i = 0; i < nthreads; i++)
        TU_CHECK(pthread_join(tid[i], NULL) == 0, "pthread_join");
    for (i = 0; i < nthreads; i++)
        drain(i);
    tu_validate_heap();
    hwm = vm_hwm_bytes();
    bound = 3 * atomic_load(&peak_live) + 64 * MiB;
    printf("soak: %ld operations, %d threads, %.1f s, peak RSS %zu MiB (bound %zu MiB: "
           "3 x peak live %zu MiB + 64 MiB), %ld corruptions\n",
           (long)atomic_load(&total_ops), nthreads, now() - start, hwm / MiB, bound / MiB,
           (size_t)atomic_load(&peak_live) / MiB, (long)atomic_load(&corruptions));
    TU_CHECK(atomic_load(&live_bytes) == 0, "%zu live bytes left over",
             (size_t)atomic_load(&live_bytes));
    if (atomic_load(&corruptions) != 0 || hwm > bound) {
        fprintf(stderr, "soak: FAILED: %s\n",
                hwm > bound ? "peak RSS above the bound" : "corrupted blocks");
        return 1;
    }
    return 0;
}
