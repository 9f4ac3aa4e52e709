/* Concurrency: blocks allocated in one thread and freed in another.
 *
 * Producers allocate blocks, fill them with the pattern of a unique id and
 * push them (in batches) through a bounded queue to consumers.  Consumers
 * verify each block, then either free it, realloc it and free it, or send
 * it back to a producer through a return queue, where the producer verifies
 * and frees it.  So blocks cross threads in both directions, and frees of
 * remote blocks happen while their owner keeps allocating.
 *
 * The whole exchange runs for several rounds with fresh threads; RSS after
 * the last round must not exceed RSS after the first round by more than
 * 64 MiB (remotely freed memory must be reusable).
 *
 * usage: mt_xthread [rounds] [blocks-per-producer-per-round]
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

#define PRODUCERS 4
#define CONSUMERS 5
#define BATCH 32
#define QCAP 64 /* batches */

struct item {
    unsigned char *p;
    size_t n;
    uint64_t id;
};

struct batch {
    int count;
    struct item it[BATCH];
};

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    struct batch *slot[QCAP];
    int head, len;
};

static struct queue forward, back;
static atomic_uint_fast64_t next_id = 1;
static atomic_long freed_remote, returned;
static long blocks_per_producer = 40000;

static void q_init(struct queue *q)
{
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
    q->head = q->len = 0;
}

static void q_push(struct queue *q, struct batch *b)
{
    pthread_mutex_lock(&q->lock);
    while (q->len == QCAP)
        pthread_cond_wait(&q->not_full, &q->lock);
    q->slot[(q->head + q->len) % QCAP] = b;
    q->len++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->lock);
}

static int q_try_push(struct queue *q, struct batch *b)
{
    int ok = 0;
    pthread_mutex_lock(&q->lock);
    if (q->len < QCAP) {
        q->slot[(q->head + q->len) % QCAP] = b;
        q->len++;
        ok = 1;
    }
    pthread_mutex_unlock(&q->lock);
    return ok;
}

static struct batch *q_pop(struct queue *q, int wait)
{
    struct batch *b = NULL;
    pthread_mutex_lock(&q->lock);
    while (wait && q->len == 0)
        pthread_cond_wait(&q->not_empty, &q->lock);
    if (q->len > 0) {
        b = q->slot[q->head];
        q->head = (q->head + 1) % QCAP;
        q->len--;
        pthread_cond_signal(&q->not_full);
    }
    pthread_mutex_unlock(&q->lock);
    return b;
}

static void verify(const struct item *it, const char *when)
{
    size_t bad = tu_verify(it->p, it->n, it->id);
    TU_CHECK(bad == (size_t)-1, "block %p (%zu bytes, id %llu) corrupted at offset %zu %s",
             (void *)it->p, it->n, (unsigned long long)it->id, bad, when);
}

static size_t random_size(uint64_t *rng)
{
    uint64_t r = tu_rand(rng);
    unsigned pick = (unsigned)(r % 1000);
    r >>= 10;
    if (pick < 700)
        return 1 + (size_t)(r % 256);
    if (pick < 950)
        return 257 + (size_t)(r % 4000);
    if (pick < 998)
        return 4257 + (size_t)(r % 60000);
    return 300000 + (size_t)(r % (2 * MiB));
}

static void drain_back(int wait)
{
    struct batch *b;
    while ((b = q_pop(&back, wait)) != NULL) {
        int i;
        for (i = 0; i < b->count; i++) {
            verify(&b->it[i], "after the return trip");
            free(b->it[i].p);
        }
        free(b);
        atomic_fetch_add(&returned, 1);
        wait = 0;
    }
}

static void *producer(void *arg)
{
    uint64_t rng = tu_seed((uintptr_t)arg, 12345);
    long made = 0;
    while (made < blocks_per_producer) {
        struct batch *b = malloc(sizeof *b);
        int i;
        TU_CHECK(b != NULL, "malloc(batch)");
        b->count = BATCH;
        for (i = 0; i < BATCH; i++) {
            struct item *it = &b->it[i];
            it->n = random_size(&rng);
            it->id = atomic_fetch_add(&next_id, 1);
            it->p = (i % 8 == 7) ? calloc(1, it->n) : malloc(it->n);
            TU_CHECK(it->p != NULL, "allocation of %zu bytes", it->n);
            TU_CHECK(tu_aligned(it->p, 16), "%p not aligned", (void *)it->p);
            tu_fill(it->p, it->n, it->id);
        }
        made += BATCH;
        q_push(&forward, b);
        drain_back(0);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    uint64_t rng = tu_seed((uintptr_t)arg, 777);
    struct batch *b;
    while ((b = q_pop(&forward, 1)) != NULL) {
        int i, keep = 0;
        if (b->count == 0) { /* end marker */
            free(b);
            break;
        }
        for (i = 0; i < b->count; i++) {
            struct item *it = &b->it[i];
            unsigned what = (unsigned)(tu_rand(&rng) % 4);
            verify(it, "in the consumer");
            if (what == 0) {
                /* realloc a remote block, then keep it for the way back */
                size_t n2 = it->n / 2 + 1 + (size_t)(tu_rand(&rng) % (it->n + 64));
                unsigned char *q = realloc(it->p, n2);
                size_t bad;
                TU_CHECK(q != NULL, "realloc(%zu -> %zu)", it->n, n2);
                bad = tu_verify(q, it->n < n2 ? it->n : n2, it->id);
                TU_CHECK(bad == (size_t)-1, "remote realloc lost byte %zu", bad);
                it->p = q;
                it->n = n2;
                it->id = atomic_fetch_add(&next_id, 1);
                tu_fill(it->p, it->n, it->id);
                b->it[keep++] = *it;
            } else if (what == 1) {
                b->it[keep++] = *it;
            } else {
                free(it->p);
                atomic_fetch_add(&freed_remote, 1);
            }
        }
        b->count = keep;
        if (keep == 0 || !q_try_push(&back, b)) {
            for (i = 0; i < b->count; i++) {
                verify(&b->it[i], "before a consumer free");
                free(b->it[i].p);
            }
            free(b);
        }
    }
    return NULL;
}

static void one_round(int round)
{
    pthread_t p[PRODUCERS], c[CONSUMERS];
    int i;
    for (i = 0; i < CONSUMERS; i++)
        TU_CHECK(pthread_create(&c[i], NULL, consumer, (void *)(uintptr_t)(round * 100 + i)) == 0,
                 "pthread_create");
    for (i = 0; i < PRODUCERS; i++)
        TU_CHECK(pthread_create(&p[i], NULL, producer, (void *)(uintptr_t)(round * 100 + 50 + i)) == 0,
                 "pthread_create");
    for (i = 0; i < PRODUCERS; i++)
        TU_CHECK(pthread_join(p[i], NULL) == 0, "pthread_join");
    for (i = 0; i < CONSUMERS; i++) {
        struct batch *end = malloc(sizeof *end);
        TU_CHECK(end != NULL, "malloc");
        end->count = 0;
        q_push(&forward, end);
    }
    for (i = 0; i < CONSUMERS; i++)
        TU_CHECK(pthread_join(c[i], NULL) == 0, "pthread_join");
    drain_back(0);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 6;
    size_t rss_first = 0, rss_last = 0;
    int r;
    if (argc > 2)
        blocks_per_producer = atol(argv[2]);
    if (rounds < 2)
        rounds = 2;
    alarm(300);
    tu_expect_cmalloc();
    q_init(&forward);
    q_init(&back);
    for (r = 0; r < rounds; r++) {
        one_round(r);
        malloc_trim(0);
        if (r == 0)
            rss_first = tu_rss_bytes();
        rss_last = tu_rss_bytes();
        printf("round %d: RSS %zu KiB\n", r, rss_last / 1024);
        fflush(stdout);
    }
    TU_CHECK(atomic_load(&freed_remote) > 0 && atomic_load(&returned) > 0,
             "the test did not exercise remote frees");
    TU_CHECK(rss_last <= rss_first + 64 * MiB,
             "RSS grew from %zu KiB after round 1 to %zu KiB after round %d", rss_first / 1024,
             rss_last / 1024, rounds);
    printf("mt_xthread: %d rounds, %llu blocks, %ld freed remotely, %ld batches returned: OK\n",
           rounds, (unsigned long long)atomic_load(&next_id) - 1, (long)atomic_load(&freed_remote),
           (long)atomic_load(&returned));
    return 0;
}
