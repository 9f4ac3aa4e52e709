/* Shared helpers of the benchmark workloads (bench/).
 *
 * Every workload runs a fixed amount of work chosen by its arguments, with
 * fixed seeds, and prints one result line on stdout that depends only on
 * the arguments: never on addresses, timing or thread scheduling.
 * scripts/bench compares that line between allocators, so a run whose
 * output differs is flagged.  Blocks carry a small stamp (their size and a
 * tag derived from the seed) that is checked when they are freed; damaged
 * blocks are counted and reported in the result line ("bad=N").
 *
 * Header-only: each workload is a single C file. */
#ifndef CMALLOC_BENCH_H
#define CMALLOC_BENCH_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BENCH_MAX_THREADS 256

static inline void bench_die(const char *what)
{
    fprintf(stderr, "bench: %s\n", what);
    exit(1);
}

static inline void *bench_xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        bench_die("out of memory");
    return p;
}

/* Parse a non-negative integer argument, with an optional k/m/g suffix
 * (powers of 1024) so sizes read naturally on the command line. */
static inline long long bench_arg(int argc, char **argv, int i, long long dflt)
{
    if (i >= argc)
        return dflt;
    char *end;
    errno = 0;
    long long v = strtoll(argv[i], &end, 10);
    if (errno || end == argv[i] || v < 0)
        goto bad;
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end)
        goto bad;
    return v;
bad:
    fprintf(stderr, "bench: bad argument '%s'\n", argv[i]);
    exit(2);
}

static inline int bench_threads_arg(int argc, char **argv, int i, int dflt)
{
    long long t = bench_arg(argc, argv, i, dflt);
    if (t < 1 || t > BENCH_MAX_THREADS)
        bench_die("thread count must be 1..256");
    return (int)t;
}

/* ---- Random numbers: splitmix64 to seed, xoshiro-style xorshift64* to run. */

typedef struct { uint64_t s; } bench_rng;

static inline bench_rng bench_rng_seed(uint64_t seed)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (bench_rng){z ? z : 1};
}

static inline uint64_t bench_next(bench_rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, n): the high bits, by multiplication (n < 2^32). */
static inline uint32_t bench_below(bench_rng *r, uint32_t n)
{
    return (uint32_t)(((bench_next(r) >> 32) * (uint64_t)n) >> 32);
}

static inline size_t bench_between(bench_rng *r, size_t lo, size_t hi)
{
    return lo + bench_below(r, (uint32_t)(hi - lo + 1));
}

/* Log-uniform in [lo, hi]: every doubling is equally likely. */
static inline size_t bench_log_between(bench_rng *r, size_t lo, size_t hi)
{
    int lo_bits = 63 - __builtin_clzll(lo), hi_bits = 63 - __builtin_clzll(hi);
    int b = lo_bits + (int)bench_below(r, (uint32_t)(hi_bits - lo_bits + 1));
    size_t base = (size_t)1 << b;
    size_t s = base + bench_below(r, (uint32_t)base);
    return s < lo ? lo : s > hi ? hi : s;
}

/* The size mix of small-object programs (cfrac, espresso, interpreters):
 * mostly 16..256 bytes, some up to a few KiB, a few larger. */
static inline size_t bench_small_mix(bench_rng *r)
{
    uint32_t c = bench_below(r, 1000);
    if (c < 700)
        return bench_between(r, 16, 128);
    if (c < 900)
        return bench_between(r, 129, 256);
    if (c < 980)
        return bench_between(r, 257, 2048);
    if (c < 998)
        return bench_between(r, 2049, 16384);
    return bench_between(r, 16385, 65536);
}

/* ---- Block stamps: size and tag at the start, a check byte at the end
 * (blocks of more than 16 bytes). */

#define BENCH_STAMP_MIN 16

static inline uint64_t bench_tag_of(uint64_t tag, size_t size)
{
    return (tag * 0x9e3779b97f4a7c15ull) ^ size;
}

/* Write the stamp of a block of 'size' bytes (size >= 16). */
static inline void bench_stamp(void *p, size_t size, uint64_t tag)
{
    uint64_t *w = p;
    w[0] = size;
    w[1] = bench_tag_of(tag, size);
    if (size > 16) /* a 16-byte block is all stamp already */
        ((unsigned char *)p)[size - 1] = (unsigned char)(tag ^ size);
}

/* Check a stamp; returns the tag (for checksums) and counts damage. */
static inline uint64_t bench_check(const void *p, unsigned long *bad)
{
    const uint64_t *w = p;
    size_t size = (size_t)w[0];
    if (w[0] < BENCH_STAMP_MIN || w[0] > ((uint64_t)1 << 40)) {
        ++*bad;
        return 0;
    }
    uint64_t x = w[1] ^ size;
    /* Undo the multiplication: the inverse of the odd golden-ratio factor. */
    uint64_t tag = x * 0xf1de83e19937733dull;
    if (size > 16 && ((const unsigned char *)p)[size - 1] != (unsigned char)(tag ^ size))
        ++*bad;
    return tag;
}

/* Seals for blocks of any size (1 byte and up), whose size and tag the
 * caller keeps: up to 8 bytes of a hash of both at the start, and a check
 * byte at the end.  bench_seal_ok returns 1 if the seal is intact. */
static inline void bench_seal(void *p, size_t size, uint64_t tag)
{
    uint64_t h = bench_tag_of(tag, size);
    memcpy(p, &h, size < 8 ? size : 8);
    if (size > 8)
        ((unsigned char *)p)[size - 1] = (unsigned char)(tag ^ size);
}

static inline int bench_seal_ok(const void *p, size_t size, uint64_t tag)
{
    uint64_t h = bench_tag_of(tag, size);
    if (memcmp(p, &h, size < 8 ? size : 8) != 0)
        return 0;
    return size <= 8 || ((const unsigned char *)p)[size - 1] == (unsigned char)(tag ^ size);
}

/* A sealed block with its size and tag kept beside it; p is NULL when the
 * slot is empty. */
struct bench_sealed {
    void *p;
    uint32_t size;
    uint64_t tag;
};

/* Allocate and seal a block of 'size' bytes into b; returns the tag, for
 * the caller's sum of the tags allocated. */
static inline uint64_t bench_sealed_alloc(struct bench_sealed *b, size_t size, uint64_t tag)
{
    b->p = bench_xmalloc(size);
    b->size = (uint32_t)size;
    b->tag = tag;
    bench_seal(b->p, size, tag);
    return tag;
}

/* Check and free b's block, if it has one: an intact block's tag is added
 * to *freed, a damaged one counted in *bad. */
static inline void bench_sealed_free(struct bench_sealed *b, uint64_t *freed, unsigned long *bad)
{
    if (!b->p)
        return;
    if (bench_seal_ok(b->p, b->size, b->tag))
        *freed += b->tag;
    else
        ++*bad;
    free(b->p);
    b->p = NULL;
}

static inline size_t bench_stamped_size(const void *p)
{
    return (size_t)((const uint64_t *)p)[0];
}

/* Mix a value into a running hash (order-dependent; use only within one
 * thread's deterministic sequence, and add the per-thread results). */
static inline uint64_t bench_mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

/* ---- Threads */

typedef void *(*bench_thread_fn)(void *);

/* Run fn(arg + i * arg_size) in n threads and wait for all of them. */
static inline void bench_run_threads(int n, bench_thread_fn fn, void *args, size_t arg_size)
{
    pthread_t tids[BENCH_MAX_THREADS];
    for (int i = 0; i < n; i++)
        if (pthread_create(&tids[i], NULL, fn, (char *)args + (size_t)i * arg_size) != 0)
            bench_die("pthread_create failed");
    for (int i = 0; i < n; i++)
        pthread_join(tids[i], NULL);
}

/* Read our resident set size, in KiB, from /proc/self/statm, without
 * calling the allocator (no stdio), so sampling it disturbs nothing. */
static inline long bench_rss_kib(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    char *sp = strchr(buf, ' ');
    if (!sp)
        return -1;
    return strtol(sp + 1, NULL, 10) * (sysconf(_SC_PAGESIZE) / 1024);
}

#endif
