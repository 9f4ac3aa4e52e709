/* Fork in a loop under allocation load: no deadlock and no damage in
 * thousands of forks.
 *
 * Worker threads run malloc/calloc/memalign/realloc/free of mixed sizes
 * (tiny to 1 MiB classes and huge blocks above 1 MiB) without pause, so
 * every fork lands while some of them are inside the allocator, holding or
 * waiting for its locks.  The main thread forks again and again; each child
 * allocates and frees blocks of several classes (and a huge one), verifies
 * them, checks and frees a few blocks it inherited, and exits.  Between
 * forks the main thread calls malloc_trim() from time to time.
 *
 * Deadlock detection: the parent re-arms a 30 s alarm before every fork, so
 * a fork that hangs in the allocator's fork handlers kills it by SIGALRM;
 * each child arms its own 10 s alarm, and the parent reports a child killed
 * by SIGALRM as a deadlock in the child.
 *
 * usage: fork_loop [forks] [workers]
 * (CMALLOC_TEST_QUICK=1: a tenth of the forks)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define SLOTS 64
#define KEEP 8
#define MAX_WORKERS 16

/* Exit statuses of a child, so that the parent can say what went wrong. */
enum { CHILD_OK, CHILD_NOMEM, CHILD_CORRUPT, CHILD_INHERITED, CHILD_ALIGN };

static atomic_int stop;
static atomic_long worker_ops;

struct item {
    unsigned char *p;
    size_t n;
    uint64_t id;
};

/* Blocks of the main thread, allocated before the first fork and never
 * touched by the workers: the children find them intact. The last one is
 * huge. */
static struct item keep[KEEP];

/* Mostly small blocks, a few up to 1 MiB, and 1% just above 1 MiB (huge
 * mappings).  Each fork copies the page tables of the parent and
 * write-protects its memory, after which the workers' first write to each
 * page faults: the big blocks are few and not much above the threshold,
 * because what matters is how often the workers are in the large and huge
 * block code when a fork comes, not how many bytes they touch. */
static size_t random_size(uint64_t *rng)
{
    uint64_t r = tu_rand(rng);
    unsigned pick = (unsigned)(r % 100);
    r >>= 8;
    if (pick < 60)
        return (size_t)(r % 257);
    if (pick < 90)
        return 257 + (size_t)(r % 16000);
    if (pick < 98)
        return 16 * KiB + (size_t)(r % (240 * KiB));
    if (pick < 99)
        return 256 * KiB + (size_t)(r % (768 * KiB + 1));
    return MiB + 1 + (size_t)(r % (512 * KiB));
}

/* Blocks of 8 KiB and more carry the pattern only in their first and last
 * 4 KiB: enough to catch a lost or misplaced page run or mapping, and cheap
 * enough that the workers spend their time in the allocator and a child
 * (which shares the CPUs with them) is done quickly. */
#define EDGE 4096

/* calloc clears all of a block that may have been used before (a huge one
 * from cmalloc's cache of mappings, say), so after a fork it would copy
 * every page of it: calloc is kept to the smaller blocks. */
#define CALLOC_MAX (64 * KiB)

/* The pattern's ranges of an n-byte block: [0, head) and [tail, n). */
static size_t edge_head(size_t n)
{
    return n < 2 * EDGE ? n : EDGE;
}

static size_t edge_tail(size_t n)
{
    return n < 2 * EDGE ? n : (n - EDGE) & ~(size_t)7; /* tu_fill_range wants 8-aligned */
}

static void fill(const struct item *it)
{
    tu_fill_range(it->p, 0, edge_head(it->n), it->id);
    tu_fill_range(it->p, edge_tail(it->n), it->n - edge_tail(it->n), it->id);
}

static size_t check(const unsigned char *p, size_t n, uint64_t id)
{
    size_t bad = tu_verify_range(p, 0, edge_head(n), id);
    return bad != (size_t)-1 ? bad : tu_verify_range(p, edge_tail(n), n - edge_tail(n), id);
}

static void *worker(void *arg)
{
    uint64_t rng = tu_seed((uintptr_t)arg, 0xF0F0);
    uint64_t id = (uint64_t)(uintptr_t)arg << 40;
    struct item slot[SLOTS];
    size_t i;
    memset(slot, 0, sizeof slot);
    /* Below the main thread and the children (which inherit its priority):
     * the workers still keep a CPU busy with allocations all the time, but
     * a child no longer waits behind them for a CPU, which made each fork
     * take several times as long.  Only the run time depends on it. */
    (void)setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        struct item *it = &slot[tu_rand(&rng) % SLOTS];
        unsigned what = (unsigned)(tu_rand(&rng) % 10);
        if (it->p) {
            size_t bad = check(it->p, it->n, it->id);
            TU_CHECK(bad == (size_t)-1, "worker block (%zu bytes) corrupted at %zu", it->n, bad);
            if (what < 3) {
                size_t n2 = random_size(&rng), kept = it->n < n2 ? it->n : n2;
                unsigned char *q = realloc(it->p, n2 ? n2 : 1);
                TU_CHECK(q != NULL, "realloc(%zu)", n2);
                bad = tu_verify(q, kept < EDGE ? kept : EDGE, it->id);
                TU_CHECK(bad == (size_t)-1, "realloc %zu -> %zu lost byte %zu", it->n, n2, bad);
                it->p = q;
                it->n = n2 ? n2 : 1;
                it->id = ++id;
                fill(it);
            } else {
                free(it->p);
                it->p = NULL;
            }
        } else {
            it->n = random_size(&rng);
            it->id = ++id;
            if (what == 0 && it->n <= CALLOC_MAX) {
                it->p = calloc(1, it->n);
                TU_CHECK(it->p != NULL, "calloc(%zu)", it->n);
                TU_CHECK(tu_first_nonzero(it->p, edge_head(it->n)) == (size_t)-1,
                         "calloc(%zu) not zeroed", it->n);
            } else if (what == 1) {
                it->p = memalign(256, it->n);
                TU_CHECK(it->p != NULL && tu_aligned(it->p, 256), "memalign(256, %zu)", it->n);
            } else {
                it->p = malloc(it->n);
                TU_CHECK(it->p != NULL, "malloc(%zu)", it->n);
            }
            fill(it);
        }
        atomic_fetch_add_explicit(&worker_ops, 1, memory_order_relaxed);
    }
    for (i = 0; i < SLOTS; i++)
        free(slot[i].p);
    return NULL;
}

/* One block per size region: tiny classes, the 128 B..1 MiB classes around
 * their boundaries, and a huge mapping. */
static const size_t child_sizes[] = {
    1, 16, 24, 100, 128, 129, 640, 1024, 1025, 4096, 20000, 65536, 65537,
    300000, 1048576, 2 * 1048576 + 12345,
};
#define NCHILD (sizeof child_sizes / sizeof child_sizes[0])

static int child_work(int iteration)
{
    struct item mine[NCHILD];
    size_t i;
    alarm(10);
    for (i = 0; i < NCHILD; i++) {
        struct item *it = &mine[i];
        int zeroed = i % 4 == 3 && child_sizes[i] <= CALLOC_MAX;
        it->n = child_sizes[i];
        it->id = i + 1;
        it->p = zeroed ? calloc(1, it->n) : malloc(it->n);
        if (!it->p)
            return CHILD_NOMEM;
        if (zeroed && tu_first_nonzero(it->p, edge_head(it->n)) != (size_t)-1)
            return CHILD_CORRUPT;
        fill(it);
    }
    /* a block that moves from a small class to a huge mapping */
    mine[0].p = realloc(mine[0].p, 3 * MiB);
    if (!mine[0].p || check(mine[0].p, mine[0].n, mine[0].id) != (size_t)-1)
        return CHILD_CORRUPT;
    mine[0].n = 3 * MiB;
    fill(&mine[0]);
    for (i = 0; i < NCHILD; i++) {
        if (check(mine[i].p, mine[i].n, mine[i].id) != (size_t)-1)
            return CHILD_CORRUPT;
        free(mine[i].p);
    }
    {
        void *p = NULL;
        if (posix_memalign(&p, 4096, 5000) != 0)
            return CHILD_NOMEM;
        if (!tu_aligned(p, 4096))
            return CHILD_ALIGN;
        free(p);
    }
    /* inherited blocks: intact, and the child may free them (one of them,
     * in turn, each time, and always the huge one) */
    for (i = 0; i < KEEP; i++)
        if (check(keep[i].p, keep[i].n, keep[i].id) != (size_t)-1)
            return CHILD_INHERITED;
    free(keep[(size_t)iteration % (KEEP - 1)].p);
    free(keep[KEEP - 1].p);
    return CHILD_OK;
}

static const char *child_error(int status)
{
    switch (status) {
    case CHILD_NOMEM: return "allocation failed";
    case CHILD_CORRUPT: return "its own block corrupted";
    case CHILD_INHERITED: return "an inherited block corrupted";
    case CHILD_ALIGN: return "misaligned block";
    default: return "unknown status";
    }
}

int main(int argc, char **argv)
{
    int forks = argc > 1 ? atoi(argv[1]) : 10000;
    int nworkers = argc > 2 ? atoi(argv[2]) : 2;
    pthread_t tid[MAX_WORKERS];
    int i, failures = 0;
    long ops_before;
    TU_CHECK(forks > 0 && nworkers > 0 && nworkers <= MAX_WORKERS,
             "usage: fork_loop [forks] [workers <= %d]", MAX_WORKERS);
    if (tu_quick())
        forks = forks / 10 + 1;
    tu_expect_cmalloc();
    for (i = 0; i < KEEP; i++) {
        keep[i].n = i == KEEP - 1 ? 2 * MiB + 100 : (size_t)(i + 1) * 700;
        keep[i].id = (uint64_t)i + 1;
        keep[i].p = malloc(keep[i].n);
        TU_CHECK(keep[i].p != NULL, "malloc");
        fill(&keep[i]);
    }
    for (i = 0; i < nworkers; i++)
        TU_CHECK(pthread_create(&tid[i], NULL, worker, (void *)(uintptr_t)(i + 1)) == 0,
                 "pthread_create");
    /* the load is on before the first fork */
    while (atomic_load(&worker_ops) < 1000)
        sched_yield();
    ops_before = atomic_load(&worker_ops);
    fflush(stdout);
    fflush(stderr);
    for (i = 0; i < forks && failures <= 5; i++) {
        int st;
        pid_t pid;
        /* Every fork copies the page tables of all the memory the parent
         * has resident, and a child tears its copy down: giving free memory
         * back now and then keeps that small (a fork takes about half as
         * long), and trims while the workers allocate. */
        if (i % 16 == 0)
            malloc_trim(0);
        alarm(30);
        pid = fork();
        TU_CHECK(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0)
            _exit(child_work(i));
        TU_CHECK(waitpid(pid, &st, 0) == pid, "waitpid: %s", strerror(errno));
        if (WIFSIGNALED(st)) {
            fprintf(stderr, "fork %d: child killed by signal %d (%s)%s\n", i, WTERMSIG(st),
                    strsignal(WTERMSIG(st)),
                    WTERMSIG(st) == SIGALRM ? ": deadlock in the child" : "");
            failures++;
        } else if (WEXITSTATUS(st) != CHILD_OK) {
            fprintf(stderr, "fork %d: child failed: %s\n", i, child_error(WEXITSTATUS(st)));
            failures++;
        }
    }
    alarm(30);
    atomic_store(&stop, 1);
    for (i = 0; i < nworkers; i++)
        TU_CHECK(pthread_join(tid[i], NULL) == 0, "pthread_join");
    for (i = 0; i < KEEP; i++) {
        TU_CHECK(check(keep[i].p, keep[i].n, keep[i].id) == (size_t)-1,
                 "parent block %d corrupted", i);
        free(keep[i].p);
    }
    printf("fork_loop: %d forks, %d workers, %ld worker operations during the forks, "
           "%d failures\n",
           forks, nworkers, (long)atomic_load(&worker_ops) - ops_before, failures);
    return failures ? 1 : 0;
}
