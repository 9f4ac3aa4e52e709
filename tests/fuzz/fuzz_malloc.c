/* libFuzzer harness: each input is a program of malloc-family calls, run
 * against cmalloc (linked into this binary, so libFuzzer's own allocations
 * go through it too) and checked as it goes.
 *
 * The program works on a table of SLOTS live blocks.  Every block is filled
 * with the pattern of its id (tests/common/testutil.h) and verified before
 * realloc and free and at the end of the input, so overlapping blocks, lost
 * bytes and writes into live blocks are caught.  Each new block is also
 * checked for alignment, malloc_usable_size >= the request, zeroed memory
 * (calloc) and overlap with the usable range of every other live block.  Any
 * violation prints what went wrong and aborts, which libFuzzer records as a
 * crash.
 *
 * Calls run on one of NTHREADS threads (the fuzzer's own thread and three
 * persistent workers); the SWITCH operation hands the rest of the program to
 * another one, so blocks are freed and resized by threads other than the one
 * that allocated them.  Only one thread runs the program at a time, so an
 * input always does the same thing.
 *
 * Input format: a sequence of operations, each an opcode byte followed by
 * its operand bytes; reading past the end gives zeros.  See run_op().
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "validate_hook.h"

#define SLOTS 64
#define NTHREADS 4

/* cmalloc's size classes: 16-byte steps up to 128 B, then four per
 * doubling up to 1 MiB (src/types.h); above that, and at the mmap
 * threshold, blocks are huge mappings. */
#define MAX_CLASS ((size_t)1 << 20)
#define MAX_HUGE ((size_t)8 << 20)

struct block {
    unsigned char *p;
    size_t req;    /* the size asked for */
    size_t n;      /* bytes that carry the pattern: req, or usable */
    size_t usable; /* malloc_usable_size() when it was allocated */
    uint64_t id;
};

/* The program being run: touched by one thread at a time, handed over
 * under the mutex of the thread that takes it. */
static struct {
    const uint8_t *data;
    size_t size, pos;
    struct block slot[SLOTS];
    uint64_t next_id;
    unsigned long ops;
    int respawn; /* a worker to replace before going on, or 0 */
} prog;

/* The pattern of a block of n bytes covers its first DENSE bytes, 64 bytes
 * every STRIDE after that and its last 64 bytes: enough to see lost or
 * misplaced pages and writes at either end, without making every operation
 * on a large block cost a pass over all of it.  Which offsets carry the
 * pattern depends on n only through the tail. */
#define DENSE ((size_t)64 << 10)
#define STRIDE ((size_t)16 << 10)
#define SAMPLE 64

/* The pattern loops are kept out of line and out of the coverage
 * instrumentation, whose comparison tracing would otherwise take most of
 * the time. */
#define NO_COVERAGE __attribute__((no_sanitize("coverage"), noinline))

static NO_COVERAGE void pattern_fill(unsigned char *p, size_t n, uint64_t id)
{
    size_t off, tail = (n - SAMPLE) & ~(size_t)7; /* tu_fill_range starts at a word */
    tu_fill_range(p, 0, n < DENSE ? n : DENSE, id);
    if (n <= DENSE)
        return;
    for (off = DENSE; off < n; off += STRIDE)
        tu_fill_range(p, off, n - off < SAMPLE ? n - off : SAMPLE, id);
    tu_fill_range(p, tail, n - tail, id);
}

/* The first offset below limit where the pattern of an n-byte block is
 * wrong, or (size_t)-1. */
static NO_COVERAGE size_t pattern_check(const unsigned char *p, size_t n, size_t limit,
                                        uint64_t id)
{
    size_t off, bad, tail = (n - SAMPLE) & ~(size_t)7;
    if (limit > n)
        limit = n;
    bad = tu_verify_range(p, 0, limit < DENSE ? limit : DENSE, id);
    if (bad != (size_t)-1 || limit <= DENSE)
        return bad;
    for (off = DENSE; off < limit; off += STRIDE) {
        bad = tu_verify_range(p, off, limit - off < SAMPLE ? limit - off : SAMPLE, id);
        if (bad != (size_t)-1)
            return bad;
    }
    return tail < limit ? tu_verify_range(p, tail, limit - tail, id) : (size_t)-1;
}

static NO_COVERAGE size_t first_nonzero(const void *p, size_t n)
{
    return tu_first_nonzero(p, n);
}

static size_t boundaries[8 + 4 * 13];
static size_t nboundaries;

static _Noreturn void fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "fuzz_malloc: after %lu operations: ", prog.ops);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

static uint8_t get8(void)
{
    return prog.pos < prog.size ? prog.data[prog.pos++] : 0;
}

static uint32_t get16(void)
{
    uint32_t lo = get8();
    return lo | (uint32_t)get8() << 8;
}

static uint32_t get32(void)
{
    uint32_t lo = get16();
    return lo | get16() << 16;
}

/* A request size: 0, tiny, small, near a class boundary, mid, around the
 * largest class and the mmap threshold, or (one selector byte in 256) huge. */
static size_t get_size(void)
{
    uint8_t sel = get8();
    switch (sel & 7) {
    case 0:
        return sel >> 3; /* 0..31 */
    case 1:
        return 1 + get8() % 128u;
    case 2:
        return 129 + get16() % 3968u;
    case 3: {
        size_t b = boundaries[get8() % nboundaries];
        int delta = (int)(get8() % 33u) - 16;
        return delta < 0 && (size_t)-delta > b ? 0 : b + (size_t)(long)delta;
    }
    case 4:
        return get16();
    case 5:
        return get32() % (MAX_CLASS + 1);
    case 6:
        return MAX_CLASS - 65536 + get32() % 131072u;
    default:
        if (sel == 0xff)
            return MAX_CLASS + 1 + get32() % (MAX_HUGE - MAX_CLASS);
        return (size_t)(sel >> 3) * 64;
    }
}

static struct block *get_slot(void)
{
    return &prog.slot[get8() % SLOTS];
}

static void verify(const struct block *b, const char *when)
{
    size_t bad = pattern_check(b->p, b->n, b->n, b->id);
    if (bad != (size_t)-1)
        fail("block %p (%zu bytes, id %llu) corrupted at offset %zu %s", (void *)b->p, b->n,
             (unsigned long long)b->id, bad, when);
}

/* Checks of a block just returned for a request of n bytes at alignment
 * align; records it in b (whose old block, if any, is gone). */
static void adopt(struct block *b, void *p, size_t n, size_t align, const char *what)
{
    size_t usable = malloc_usable_size(p), i;
    uintptr_t lo = (uintptr_t)p, hi = lo + usable;
    if (!tu_aligned(p, align))
        fail("%s(%zu) = %p is not aligned to %zu", what, n, p, align);
    if (usable < n)
        fail("%s(%zu) = %p: malloc_usable_size %zu", what, n, p, usable);
    for (i = 0; i < SLOTS; i++) {
        const struct block *o = &prog.slot[i];
        if (o == b || !o->p)
            continue;
        if (lo < (uintptr_t)o->p + o->usable && (uintptr_t)o->p < hi)
            fail("%s(%zu) = %p (usable %zu) overlaps live block %p (usable %zu)", what, n, p,
                 usable, (void *)o->p, o->usable);
    }
    b->p = p;
    b->req = b->n = n;
    b->usable = usable;
}

static void new_block(struct block *b, void *p, size_t n, size_t align, const char *what)
{
    if (!p)
        fail("%s(%zu) returned NULL", what, n);
    adopt(b, p, n, align, what);
    b->id = ++prog.next_id;
    pattern_fill(b->p, b->n, b->id);
}

static void release(struct block *b)
{
    if (b->p) {
        verify(b, "before free");
        free(b->p);
        b->p = NULL;
    }
}

static void do_realloc(struct block *b, size_t n)
{
    void *q;
    size_t keep = b->req < n ? b->req : n, old_n = b->n, bad;
    if (b->p)
        verify(b, "before realloc");
    q = realloc(b->p, n);
    if (!q) {
        /* realloc(p, 0) frees p, as glibc's does */
        if (n != 0 || !b->p)
            fail("realloc(%p, %zu) returned NULL", (void *)b->p, n);
        b->p = NULL;
        return;
    }
    if (!b->p) {
        new_block(b, q, n, 16, "realloc(NULL)");
        return;
    }
    adopt(b, q, n, 16, "realloc");
    bad = pattern_check(q, old_n, keep, b->id);
    if (bad != (size_t)-1)
        fail("realloc to %zu lost byte %zu of the block", n, bad);
    pattern_fill(q, n, b->id);
}

/* Calls that must fail cleanly, and must leave the blocks alone. */
static void do_edge(struct block *b)
{
    void *p = NULL;
    switch (get8() % 5) {
    case 0:
        errno = 0;
        if (malloc(tu_opaque(SIZE_MAX - get8())) != NULL || errno != ENOMEM)
            fail("malloc(SIZE_MAX - small) did not fail with ENOMEM");
        break;
    case 1:
        errno = 0;
        if (calloc(tu_opaque(SIZE_MAX / 2 + 1 + get8()), 2) != NULL || errno != ENOMEM)
            fail("calloc with a product that overflows did not fail with ENOMEM");
        break;
    case 2:
        if (b->p) {
            verify(b, "before a failing realloc");
            errno = 0;
            if (realloc(b->p, tu_opaque(SIZE_MAX - get8())) != NULL || errno != ENOMEM)
                fail("realloc(p, SIZE_MAX - small) did not fail with ENOMEM");
            verify(b, "after a failing realloc");
        }
        break;
    case 3:
        /* not a power of two, or not a multiple of sizeof(void *) */
        if (posix_memalign(&p, tu_opaque(sizeof(void *) * 3 + (get8() & 1) * 4), 16) != EINVAL)
            fail("posix_memalign with a bad alignment did not return EINVAL");
        break;
    default:
        free(NULL);
        break;
    }
}

enum op {
    OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_REALLOC_NEAR, OP_FREE, OP_POSIX_MEMALIGN,
    OP_MEMALIGN, OP_ALIGNED_ALLOC, OP_USABLE, OP_SWITCH, OP_VERIFY, OP_EDGE, OP_RESPAWN,
    OP_TUNE
};

/* Opcode byte modulo 16: malloc and free are the most frequent. */
static const uint8_t op_of[16] = {
    OP_MALLOC, OP_MALLOC, OP_CALLOC, OP_REALLOC, OP_REALLOC_NEAR, OP_FREE, OP_FREE,
    OP_POSIX_MEMALIGN, OP_MEMALIGN, OP_ALIGNED_ALLOC, OP_USABLE, OP_SWITCH, OP_VERIFY,
    OP_EDGE, OP_RESPAWN, OP_TUNE,
};

static void set_default_tuning(void)
{
    /* values above the defaults are clamped to them */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 32 << 20);
}

/* Runs one operation.  Returns the thread that runs the next ones. */
static int run_op(int self)
{
    struct block *b;
    size_t n, align;
    void *p = NULL;
    int next = self;
    prog.ops++;
    switch ((enum op)op_of[get8() % 16]) {
    case OP_MALLOC:
        b = get_slot();
        n = get_size();
        release(b);
        new_block(b, malloc(n), n, 16, "malloc");
        break;
    case OP_CALLOC: {
        size_t count = 1 + get8() % 4u, bad;
        b = get_slot();
        n = get_size();
        if (n > MAX_HUGE / count)
            count = 1;
        release(b);
        p = calloc(count, n);
        if (p && (bad = first_nonzero(p, count * n)) != (size_t)-1)
            fail("calloc(%zu, %zu) = %p: byte %zu is not zero", count, n, p, bad);
        new_block(b, p, count * n, 16, "calloc");
        break;
    }
    case OP_REALLOC:
        b = get_slot();
        do_realloc(b, get_size());
        break;
    case OP_REALLOC_NEAR: {
        /* stays in the same class, or just leaves it; huge blocks may have
         * more usable room than asked for, so repeated growth by a few bytes
         * would go on beyond MAX_HUGE */
        int delta = (int)(get8() % 65u) - 32;
        b = get_slot();
        if (b->p) {
            n = b->usable < MAX_HUGE ? b->usable : MAX_HUGE;
            do_realloc(b, delta < 0 && (size_t)-delta > n ? 1 : n + (size_t)(long)delta);
        }
        break;
    }
    case OP_FREE:
        release(get_slot());
        break;
    case OP_POSIX_MEMALIGN: {
        int rc;
        b = get_slot();
        align = sizeof(void *) << (get8() % 20u);
        n = get_size();
        release(b);
        rc = posix_memalign(&p, align, n);
        if (rc != 0)
            fail("posix_memalign(%zu, %zu) returned %d", align, n, rc);
        new_block(b, p, n, align, "posix_memalign");
        break;
    }
    case OP_MEMALIGN: {
        /* glibc (and cmalloc) round an alignment that is not a power of two
         * up to the next one */
        uint8_t a = get8();
        size_t want = 16;
        align = ((size_t)1 << ((a & 0x7f) % 23u)) + ((a & 0x80) ? 24 : 0);
        while (want < align)
            want <<= 1;
        b = get_slot();
        n = get_size();
        release(b);
        new_block(b, memalign(align, n), n, want, "memalign");
        break;
    }
    case OP_ALIGNED_ALLOC:
        b = get_slot();
        align = (size_t)1 << (get8() % 23u);
        n = get_size();
        release(b);
        new_block(b, aligned_alloc(align, n), n, align < 16 ? 16 : align, "aligned_alloc");
        break;
    case OP_USABLE:
        /* all of the usable size belongs to the block: pattern it */
        b = get_slot();
        if (b->p) {
            verify(b, "before filling its usable size");
            if (malloc_usable_size(b->p) != b->usable)
                fail("malloc_usable_size(%p) changed from %zu to %zu", (void *)b->p, b->usable,
                     malloc_usable_size(b->p));
            pattern_fill(b->p, b->usable, b->id);
            b->n = b->usable;
        }
        break;
    case OP_SWITCH:
        next = get8() % NTHREADS;
        break;
    case OP_VERIFY:
        for (n = 0; n < SLOTS; n++)
            if (prog.slot[n].p)
                verify(&prog.slot[n], "in a full check");
        break;
    case OP_EDGE:
        do_edge(get_slot());
        break;
    case OP_RESPAWN:
        /* a worker's thread exits (its cache goes back) and a new one takes
         * its place */
        prog.respawn = 1 + get8() % (NTHREADS - 1);
        break;
    case OP_TUNE: {
        uint8_t t = get8();
        if (t & 1)
            mallopt(M_MMAP_THRESHOLD, (int)(64 * 1024 + get32() % (2u << 20)));
        else if (t & 2)
            mallopt(M_TRIM_THRESHOLD, (int)(get32() % (64u << 20)));
        else
            malloc_trim(get8());
        break;
    }
    }
    return next;
}

/* Runs operations until the program ends, names another thread or asks for
 * a respawn.  Returns the thread that goes on. */
static int run_until_switch(int self)
{
    while (prog.pos < prog.size) {
        int next = run_op(self);
        if (next != self || prog.respawn)
            return next;
    }
    return self;
}

struct worker {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int index;
    int busy; /* 1: run the program, 2: exit */
    int next;
};

static struct worker workers[NTHREADS];

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->busy)
            pthread_cond_wait(&w->cond, &w->lock);
        if (w->busy == 2)
            break;
        pthread_mutex_unlock(&w->lock);
        w->next = run_until_switch(w->index);
        pthread_mutex_lock(&w->lock);
        w->busy = 0;
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void start_worker(struct worker *w)
{
    w->busy = 0;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        fail("pthread_create failed");
}

/* Blocks until worker w has run the program up to its next switch. */
static int hand_over(struct worker *w, int job)
{
    pthread_mutex_lock(&w->lock);
    w->busy = job;
    pthread_cond_broadcast(&w->cond);
    while (job == 1 && w->busy)
        pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
    return w->next;
}

static void respawn(struct worker *w)
{
    hand_over(w, 2);
    if (pthread_join(w->thread, NULL) != 0)
        fail("pthread_join failed");
    start_worker(w);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    size_t k, j;
    (void)argc;
    (void)argv;
    for (k = 16; k <= 128; k += 16)
        boundaries[nboundaries++] = k;
    for (k = 7; k < 20; k++)
        for (j = 1; j <= 4; j++)
            boundaries[nboundaries++] = ((size_t)1 << k) + j * ((size_t)1 << (k - 2));
    for (j = 1; j < NTHREADS; j++) {
        workers[j].index = (int)j;
        pthread_mutex_init(&workers[j].lock, NULL);
        pthread_cond_init(&workers[j].cond, NULL);
        start_worker(&workers[j]);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int cur = 0;
    size_t i;
    memset(&prog, 0, sizeof prog);
    prog.data = data;
    prog.size = size;
    while (prog.pos < prog.size) {
        cur = cur == 0 ? run_until_switch(0) : hand_over(&workers[cur], 1);
        if (prog.respawn) {
            respawn(&workers[prog.respawn]);
            prog.respawn = 0;
        }
    }
    for (i = 0; i < SLOTS; i++)
        release(&prog.slot[i]);
    set_default_tuning();
    tu_validate_heap();
    return 0;
}
