/* Concurrency: many threads (more than there are CPUs) doing random
 * malloc / calloc / realloc / memalign / free with content verification.
 *
 * Every block carries the pattern of a unique id; it is verified before
 * every realloc and free, so blocks handed out twice, overlapping blocks
 * and lost bytes are detected.  A shared exchange array makes blocks change
 * threads, so a share of the frees and reallocs are remote.  Blocks above
 * 256 KiB carry the pattern only in their first 4 KiB and in the first 64
 * bytes of every 64 KiB (enough to see lost or misplaced pages, and cheap).
 *
 * usage: mt_random [threads] [ops-per-thread] [huge]
 *   huge: a fifth of the blocks are in the mmap range (1..4 MiB) and another
 *         fifth between 64 KiB and 1 MiB, so large-block allocation, realloc
 *         and free run concurrently all the time.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define SLOTS 600
#define SHARED 256

struct item {
    unsigned char *p;
    size_t n;
    uint64_t id;
};

static _Atomic(struct item *) shared[SHARED];
static atomic_uint_fast64_t next_id = 1;
static atomic_long total_ops;
static long ops_per_thread = 200000;
static int huge_mix;

static size_t random_size(uint64_t *rng)
{
    uint64_t r = tu_rand(rng);
    unsigned pick = (unsigned)(r % 1000);
    r >>= 10;
    if (huge_mix) {
        if (pick < 400)
            return (size_t)(r % 257);
        if (pick < 600)
            return 257 + (size_t)(r % 3840);
        if (pick < 800)
            return 65537 + (size_t)(r % (983040));
        return 1 * MiB + (size_t)(r % (3 * MiB));
    }
    if (pick < 650)
        return (size_t)(r % 257);              /* tiny and small */
    if (pick < 900)
        return 257 + (size_t)(r % 3840);       /* up to 4 KiB */
    if (pick < 990)
        return 4097 + (size_t)(r % 61440);     /* up to 64 KiB */
    if (pick < 999)
        return 65537 + (size_t)(r % (983040)); /* up to 1 MiB */
    return 1 * MiB + (size_t)(r % (3 * MiB));  /* mmap range */
}

static void check_new(const struct item *it, const char *what)
{
    TU_CHECK(it->p != NULL, "%s(%zu) returned NULL", what, it->n);
    TU_CHECK(tu_aligned(it->p, 16), "%s(%zu) = %p not 16-aligned", what, it->n, (void *)it->p);
    TU_CHECK(malloc_usable_size(it->p) >= it->n, "%s(%zu): usable %zu", what, it->n,
             malloc_usable_size(it->p));
}

static void fill(const struct item *it)
{
    tu_fill_sparse(it->p, it->n, it->id);
}

static void verify(const struct item *it, const char *when)
{
    size_t bad = tu_verify_sparse(it->p, it->n, it->n, it->id);
    TU_CHECK(bad == (size_t)-1, "block %p (%zu bytes, id %llu) corrupted at offset %zu %s",
             (void *)it->p, it->n, (unsigned long long)it->id, bad, when);
}

static void new_block(struct item *it, uint64_t *rng)
{
    unsigned kind = (unsigned)(tu_rand(rng) % 20);
    it->n = random_size(rng);
    it->id = atomic_fetch_add(&next_id, 1);
    if (kind == 0) {
        it->p = calloc(1, it->n);
        check_new(it, "calloc");
        TU_CHECK(tu_first_nonzero(it->p, it->n) == (size_t)-1, "calloc(%zu) not zeroed", it->n);
    } else if (kind == 1) {
        size_t align = (size_t)16 << (tu_rand(rng) % 10);
        it->p = memalign(align, it->n);
        check_new(it, "memalign");
        TU_CHECK(tu_aligned(it->p, align), "memalign(%zu) = %p", align, (void *)it->p);
    } else if (kind == 2) {
        void *p = NULL;
        size_t align = (size_t)64 << (tu_rand(rng) % 8);
        TU_CHECK(posix_memalign(&p, align, it->n) == 0, "posix_memalign(%zu, %zu)", align,
                 it->n);
        it->p = p;
        check_new(it, "posix_memalign");
        TU_CHECK(tu_aligned(it->p, align), "posix_memalign(%zu) = %p", align, (void *)it->p);
    } else {
        it->p = malloc(it->n);
        check_new(it, "malloc");
    }
    fill(it);
}

static void resize_block(struct item *it, uint64_t *rng)
{
    size_t new_n = (tu_rand(rng) & 1) ? random_size(rng) : it->n + it->n / 2 + 1;
    size_t keep = it->n < new_n ? it->n : new_n, bad;
    unsigned char *q;
    verify(it, "before realloc");
    if (new_n == 0)
        new_n = 1;
    q = realloc(it->p, new_n);
    TU_CHECK(q != NULL, "realloc(%zu -> %zu) failed", it->n, new_n);
    TU_CHECK(tu_aligned(q, 16), "realloc = %p", (void *)q);
    TU_CHECK(malloc_usable_size(q) >= new_n, "realloc(%zu): usable %zu", new_n,
             malloc_usable_size(q));
    bad = tu_verify_sparse(q, keep, it->n, it->id);
    TU_CHECK(bad == (size_t)-1, "realloc %zu -> %zu lost byte %zu (id %llu)", it->n, new_n,
             bad, (unsigned long long)it->id);
    it->p = q;
    it->n = new_n;
    it->id = atomic_fetch_add(&next_id, 1);
    fill(it);
}

static void free_block(struct item *it)
{
    verify(it, "before free");
    free(it->p);
    it->p = NULL;
}

static void *worker(void *arg)
{
    uintptr_t self = (uintptr_t)arg;
    uint64_t rng = tu_seed(self, 0xC0FFEE);
    struct item *slot = calloc(SLOTS, sizeof *slot);
    long op;
    size_t i;
    TU_CHECK(slot != NULL, "calloc slots");
    for (op = 0; op < ops_per_thread; op++) {
        uint64_t r = tu_rand(&rng);
        struct item *it = &slot[r % SLOTS];
        unsigned what = (unsigned)((r >> 32) % 100);
        if (what < 8) {
            /* swap a block with the shared array: it may be freed, resized or
             * passed on by another thread */
            struct item *mine, *theirs;
            if (!it->p)
                new_block(it, &rng);
            mine = malloc(sizeof *mine);
            TU_CHECK(mine != NULL, "malloc(item)");
            *mine = *it;
            it->p = NULL;
            theirs = atomic_exchange(&shared[(r >> 16) % SHARED], mine);
            if (theirs) {
                verify(theirs, "after exchange");
                *it = *theirs;
                free(theirs);
            }
        } else if (!it->p) {
            new_block(it, &rng);
        } else if (what < 30) {
            resize_block(it, &rng);
        } else {
            free_block(it);
        }
    }
    for (i = 0; i < SLOTS; i++)
        if (slot[i].p)
            free_block(&slot[i]);
    free(slot);
    atomic_fetch_add(&total_ops, ops_per_thread);
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = argc > 1 ? atoi(argv[1]) : 8;
    pthread_t *tid;
    int i;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (argc > 2)
        ops_per_thread = atol(argv[2]);
    if (argc > 3)
        huge_mix = strcmp(argv[3], "huge") == 0;
    if (nthreads <= cpus)
        nthreads = (int)cpus + 2; /* always oversubscribe the CPUs */
    alarm(300);
    tu_expect_cmalloc();
    tid = malloc(sizeof *tid * (size_t)nthreads);
    TU_CHECK(tid != NULL, "malloc");
    for (i = 0; i < nthreads; i++)
        TU_CHECK(pthread_create(&tid[i], NULL, worker, (void *)(uintptr_t)(i + 1)) == 0,
                 "pthread_create");
    for (i = 0; i < nthreads; i++)
        TU_CHECK(pthread_join(tid[i], NULL) == 0, "pthread_join");
    for (i = 0; i < SHARED; i++) {
        struct item *it = atomic_exchange(&shared[i], NULL);
        if (it) {
            verify(it, "at the end");
            free(it->p);
            free(it);
        }
    }
    free(tid);
    printf("mt_random%s: %d threads, %ld operations, %llu blocks: OK\n",
           huge_mix ? " (huge mix)" : "", nthreads,
           (long)atomic_load(&total_ops), (unsigned long long)atomic_load(&next_id) - 1);
    return 0;
}
