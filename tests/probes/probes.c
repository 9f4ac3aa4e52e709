/* Heap-misuse probes: 116 small programs that each misuse the heap once
 * (a double or invalid free, an overflow or underflow, a use after free,
 * an access through a zero-size block, a freed address handed straight
 * back, freed data handed out again) and then report that they got away
 * with it by exiting with status 0.
 *
 * A probe is caught when the process dies before that: the allocator
 * aborts with its message, or the access faults. Probes whose misuse is a
 * read (of freed data, of a fresh block's old contents) or a wish (the same
 * address back) check what they got and exit with BLOCKED when the
 * allocator denied it, which also counts as caught.
 *
 *   probes NAME        runs one probe (its exit status tells the outcome)
 *   probes --list      lists the probes, family and name
 *   probes --all [--min N] [--verbose]
 *                      runs every probe in its own process (this program
 *                      again, with the environment it was given, so
 *                      LD_PRELOAD and CMALLOC_OPTIONS apply), prints the
 *                      caught count per family, and fails when fewer than
 *                      N were caught.
 *
 * The allocator under test is the one the program runs with: it is built
 * against plain libc, and scripts/probes preloads cmalloc or a peer. Each
 * size-dependent probe runs for a small (24 B), a medium (20000 B, in
 * cmalloc's size classes) and a large (4 MiB, mapped on its own) block. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define BLOCKED 3
#define MIB ((size_t)1 << 20)
/* Bytes that differ, unlike any fill byte an allocator may use. */
#define SECRET 0x5EC12E7DA7A0C3B1ULL

static const size_t sizes[] = {0, 24, 20000, 4 * MIB};
static const char *const size_names[] = {"", "small", "medium", "large"};

/* Keeps the compiler from reasoning about a pointer's block: every probe's
 * misuse must reach memory as written. */
static void *hide(void *p)
{
    __asm__ volatile("" : "+r"(p) : : "memory");
    return p;
}

static void touch(const void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

static void got_away(void)
{
    fputs("got away with it\n", stdout);
    fflush(stdout);
    exit(0);
}

static void blocked(void)
{
    fputs("blocked\n", stdout);
    fflush(stdout);
    exit(BLOCKED);
}

static char *alloc(size_t n)
{
    char *p = hide(malloc(n));
    if (!p) {
        fprintf(stderr, "malloc(%zu) failed\n", n);
        exit(2);
    }
    return p;
}

static char *alloc_filled(size_t n, int byte)
{
    char *p = alloc(n);
    memset(p, byte, n);
    return p;
}

static char *alloc_secret(size_t n)
{
    char *p = alloc(n);
    uint64_t word = SECRET;
    for (size_t i = 0; i + 8 <= n; i += 8)
        memcpy(p + i, &word, 8);
    return p;
}

/* Ordinary use after a misuse, as a program would go on: blocks of the same
 * size come and go, as do some of other sizes. */
static void settle(size_t n)
{
    for (int i = 0; i < 100; i++) {
        void *a = hide(malloc(n)), *b = hide(malloc(n / 2 + 1)), *c = hide(malloc(64));
        free(c);
        free(b);
        free(a);
    }
}

/* Whether SECRET is in p[0..n), at any 8-byte step. */
static bool shows_secret(const char *p, size_t n)
{
    uint64_t word = SECRET;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, (const char *)hide((void *)(p + i)), 8);
        if (v == word)
            return true;
    }
    return false;
}

/* What the misuses write: bytes that differ from each other, so that no
 * fill byte an allocator checks for can match them all. */
static char source[MIB];

static char junk(size_t i)
{
    return (char)(i * 13 + 0x41);
}

/* ---- double and invalid frees ---- */

static void double_free(size_t n)
{
    char *p = alloc(n);
    free(p);
    free(hide(p));
    settle(n);
}

static void double_free_delayed(size_t n)
{
    char *p = alloc(n);
    free(p);
    char *a = alloc(n), *b = alloc(n);
    free(hide(p));
    settle(n);
    free(b);
    free(a);
}

/* glibc's realloc(p, 0) frees p. */
static void double_free_realloc0(size_t n)
{
    char *p = alloc(n);
    touch(realloc(p, 0));
    free(hide(p));
    settle(n);
}

static void free_interior(size_t n)
{
    char *p = alloc(n);
    free(hide(p + 16));
    settle(n);
}

static void free_unaligned(size_t n)
{
    char *p = alloc(n);
    free(hide(p + 1));
    settle(n);
}

static void free_end(size_t n)
{
    char *p = alloc(n);
    free(hide(p + n));
    settle(n);
}

static void free_stack(size_t n)
{
    char buf[64];
    memset(buf, 1, sizeof buf);
    free(hide(buf + 16));
    settle(n);
}

static char global[4096];

static void free_global(size_t n)
{
    free(hide(global + 16));
    settle(n);
}

static void free_mapping(size_t n)
{
    char *m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        exit(2);
    free(hide(m + 16));
    settle(n);
}

static void free_code(size_t n)
{
    free(hide((void *)(uintptr_t)&free_code));
    settle(n);
}

/* ---- overflows and underflows: k bytes past either end ---- */

static void overflow(size_t n, size_t k, bool by_memcpy)
{
    char *p = alloc_filled(n, 1);
    if (by_memcpy) {
        memcpy(hide(p + n), source, k);
    } else {
        volatile char *q = hide(p + n);
        for (size_t i = 0; i < k; i++)
            q[i] = junk(i);
    }
    free(p);
    settle(n);
}

static void underflow(size_t n, size_t k, bool by_memcpy)
{
    char *p = alloc_filled(n, 1);
    if (by_memcpy) {
        memcpy(hide(p - k), source, k);
    } else {
        volatile char *q = hide(p - k);
        for (size_t i = 0; i < k; i++)
            q[i] = junk(i);
    }
    free(p);
    settle(n);
}

static void read_range(const char *from, size_t k)
{
    const volatile char *q = hide((void *)from);
    unsigned sum = 0;
    for (size_t i = 0; i < k; i++)
        sum += (unsigned char)q[i];
    touch(&sum);
}

static void overflow_read(size_t n)
{
    char *p = alloc_filled(n, 1);
    read_range(p + n, MIB);
    free(p);
}

static void underflow_read(size_t n)
{
    char *p = alloc_filled(n, 1);
    read_range(p - MIB, MIB);
    free(p);
}

#define SPAN_PROBES(k, tag)                                                                        \
    static void overflow_##tag(size_t n) { overflow(n, k, false); }                                \
    static void overflow_memcpy_##tag(size_t n) { overflow(n, k, true); }                          \
    static void underflow_##tag(size_t n) { underflow(n, k, false); }                              \
    static void underflow_memcpy_##tag(size_t n) { underflow(n, k, true); }
SPAN_PROBES(1, 1)
SPAN_PROBES(32, 32)
SPAN_PROBES(MIB, 1m)

/* ---- use after free ---- */

/* Reading a freed block: got away with it when the data is still there. */
static void uaf_read(size_t n)
{
    char *p = alloc_secret(n);
    free(p);
    if (shows_secret(hide(p), n))
        got_away();
    blocked();
}

static void uaf_read_memcpy(size_t n)
{
    char *p = alloc_secret(n);
    free(p);
    char *copy = alloc(n);
    memcpy(copy, hide(p), n);
    if (shows_secret(copy, n))
        got_away();
    blocked();
}

/* The old pointer of a block realloc moved. */
static void uaf_read_realloc(size_t n)
{
    char *p = alloc_secret(n);
    char *q = hide(realloc(p, 4 * n));
    if (q == p)
        blocked();
    if (shows_secret(hide(p), n))
        got_away();
    blocked();
}

static void uaf_write(size_t n)
{
    char *p = alloc(n);
    free(p);
    volatile char *q = hide(p);
    for (size_t i = 0; i < 8; i++)
        q[n / 2 + i] = junk(i);
    settle(n);
}

static void uaf_write_memcpy(size_t n)
{
    char *p = alloc(n);
    free(p);
    memcpy(hide(p + n / 2), source, 8);
    settle(n);
}

static void uaf_write_realloc(size_t n)
{
    char *p = alloc(n);
    char *q = hide(realloc(p, 4 * n));
    if (q == p)
        blocked();
    volatile char *r = hide(p);
    for (size_t i = 0; i < 8; i++)
        r[n / 2 + i] = junk(i);
    settle(n);
    free(q);
}

/* ---- zero-size blocks: any access is out of bounds ---- */

enum zero_how { Z_MALLOC, Z_CALLOC, Z_REALLOC, Z_MEMALIGN, Z_ALIGNED, Z_POSIX, Z_VALLOC };

static char *zero_block(enum zero_how how)
{
    void *p = NULL;
    switch (how) {
    case Z_MALLOC: p = malloc(0); break;
    case Z_CALLOC: p = calloc(1, 0); break;
    case Z_REALLOC: p = realloc(NULL, 0); break;
    case Z_MEMALIGN: p = memalign(64, 0); break;
    case Z_ALIGNED: p = aligned_alloc(64, 0); break;
    case Z_POSIX:
        if (posix_memalign(&p, 64, 0) != 0)
            p = NULL;
        break;
    case Z_VALLOC: p = valloc(0); break;
    }
    return hide(p);
}

static void zero_read(enum zero_how how)
{
    char *p = zero_block(how);
    volatile char *q = p;
    char c = q[0];
    touch(&c);
    free(p);
}

static void zero_write(enum zero_how how)
{
    char *p = zero_block(how);
    volatile char *q = p;
    q[0] = 'A';
    free(p);
}

#define ZERO_PROBES(how, tag)                                                                      \
    static void zero_read_##tag(size_t n) { (void)n, zero_read(how); }                             \
    static void zero_write_##tag(size_t n) { (void)n, zero_write(how); }
ZERO_PROBES(Z_MALLOC, malloc)
ZERO_PROBES(Z_CALLOC, calloc)
ZERO_PROBES(Z_REALLOC, realloc)
ZERO_PROBES(Z_MEMALIGN, memalign)
ZERO_PROBES(Z_ALIGNED, aligned_alloc)
ZERO_PROBES(Z_POSIX, posix_memalign)
ZERO_PROBES(Z_VALLOC, valloc)

static void zero_read_memcpy(size_t n)
{
    (void)n;
    char *p = zero_block(Z_MALLOC), copy[16];
    memcpy(copy, p, sizeof copy);
    touch(copy);
    free(p);
}

static void zero_write_memcpy(size_t n)
{
    (void)n;
    char *p = zero_block(Z_MALLOC);
    memcpy(p, source, 16);
    free(p);
}

/* ---- reuse: a freed address comes straight back ---- */

static void reuse_malloc(size_t n)
{
    char *p = alloc(n);
    free(p);
    char *q = alloc(n);
    if (q != p)
        blocked();
    free(q);
}

static void reuse_calloc(size_t n)
{
    char *p = alloc(n);
    free(p);
    char *q = hide(calloc(1, n));
    if (q != p)
        blocked();
    free(q);
}

/* After a double free, two allocations share one block. */
static void reuse_double_free(size_t n)
{
    char *p = alloc(n);
    free(p);
    free(hide(p));
    char *a = alloc(n), *b = alloc(n);
    if (a != b)
        blocked();
}

/* ---- freed data handed out again ---- */

static void unzeroed_malloc(size_t n)
{
    free(alloc_secret(n));
    char *q = alloc(n);
    if (shows_secret(q, n))
        got_away();
    blocked();
}

static void unzeroed_smaller(size_t n)
{
    free(alloc_secret(n));
    size_t m = n - n / 8;
    char *q = alloc(m);
    if (shows_secret(q, m))
        got_away();
    blocked();
}

/* The block realloc moved away from, handed out again. */
static void unzeroed_realloc(size_t n)
{
    char *p = alloc_secret(n);
    char *q = hide(realloc(p, 4 * n));
    if (q == p)
        blocked();
    char *r = alloc(n);
    if (shows_secret(r, n))
        got_away();
    blocked();
}

/* ---- the table ---- */

struct probe {
    const char *family;
    const char *name;
    void (*run)(size_t n);
    unsigned size;  /* index into sizes; 0: the probe takes none */
};

#define SIZED(family, fn) {family, #fn, fn, 1}, {family, #fn, fn, 2}, {family, #fn, fn, 3}

static const struct probe probes[] = {
    SIZED("double_free", double_free),
    SIZED("double_free", double_free_delayed),
    SIZED("double_free", double_free_realloc0),
    SIZED("invalid_free", free_interior),
    SIZED("invalid_free", free_unaligned),
    SIZED("invalid_free", free_end),
    {"invalid_free", "free_stack", free_stack, 0},
    {"invalid_free", "free_global", free_global, 0},
    {"invalid_free", "free_mapping", free_mapping, 0},
    {"invalid_free", "free_code", free_code, 0},
    SIZED("overflow", overflow_1),
    SIZED("overflow", overflow_32),
    SIZED("overflow", overflow_1m),
    SIZED("overflow", overflow_memcpy_1),
    SIZED("overflow", overflow_memcpy_32),
    SIZED("overflow", overflow_memcpy_1m),
    SIZED("underflow", underflow_1),
    SIZED("underflow", underflow_32),
    SIZED("underflow", underflow_1m),
    SIZED("underflow", underflow_memcpy_1),
    SIZED("underflow", underflow_memcpy_32),
    SIZED("underflow", underflow_memcpy_1m),
    SIZED("out_of_bounds_read", overflow_read),
    SIZED("out_of_bounds_read", underflow_read),
    SIZED("use_after_free_read", uaf_read),
    SIZED("use_after_free_read", uaf_read_memcpy),
    SIZED("use_after_free_read", uaf_read_realloc),
    SIZED("use_after_free_write", uaf_write),
    SIZED("use_after_free_write", uaf_write_memcpy),
    SIZED("use_after_free_write", uaf_write_realloc),
    {"zero_size", "zero_read_malloc", zero_read_malloc, 0},
    {"zero_size", "zero_write_malloc", zero_write_malloc, 0},
    {"zero_size", "zero_read_calloc", zero_read_calloc, 0},
    {"zero_size", "zero_write_calloc", zero_write_calloc, 0},
    {"zero_size", "zero_read_realloc", zero_read_realloc, 0},
    {"zero_size", "zero_write_realloc", zero_write_realloc, 0},
    {"zero_size", "zero_read_memalign", zero_read_memalign, 0},
    {"zero_size", "zero_write_memalign", zero_write_memalign, 0},
    {"zero_size", "zero_read_aligned_alloc", zero_read_aligned_alloc, 0},
    {"zero_size", "zero_write_aligned_alloc", zero_write_aligned_alloc, 0},
    {"zero_size", "zero_read_posix_memalign", zero_read_posix_memalign, 0},
    {"zero_size", "zero_write_posix_memalign", zero_write_posix_memalign, 0},
    {"zero_size", "zero_read_valloc", zero_read_valloc, 0},
    {"zero_size", "zero_write_valloc", zero_write_valloc, 0},
    {"zero_size", "zero_read_memcpy", zero_read_memcpy, 0},
    {"zero_size", "zero_write_memcpy", zero_write_memcpy, 0},
    SIZED("reuse", reuse_malloc),
    SIZED("reuse", reuse_calloc),
    SIZED("reuse", reuse_double_free),
    SIZED("unzeroed", unzeroed_malloc),
    SIZED("unzeroed", unzeroed_smaller),
    SIZED("unzeroed", unzeroed_realloc),
};

#define NPROBES (sizeof probes / sizeof probes[0])
_Static_assert(NPROBES == 116, "the suite has 116 probes");

static void probe_name(const struct probe *pr, char *buf, size_t len)
{
    if (pr->size)
        snprintf(buf, len, "%s_%s", pr->name, size_names[pr->size]);
    else
        snprintf(buf, len, "%s", pr->name);
}

static int run_one(const char *name)
{
    for (size_t i = 0; i < NPROBES; i++) {
        char full[80];
        probe_name(&probes[i], full, sizeof full);
        if (strcmp(full, name) == 0) {
            probes[i].run(sizes[probes[i].size]);
            got_away();
        }
    }
    fprintf(stderr, "probes: no probe named '%s' (probes --list)\n", name);
    return 2;
}

enum outcome { CAUGHT, BLOCKED_BY_ALLOCATOR, GOT_AWAY, HUNG, FAILED };

/* Runs one probe in a process of its own; *why says how it ended. */
static enum outcome spawn(const char *name, bool verbose, char *why, size_t len)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, len, "fork: %s", strerror(errno));
        return FAILED;
    }
    if (pid == 0) {
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_CORE, &none);
        if (!verbose) {
            FILE *null = freopen("/dev/null", "w", stderr);
            (void)null;
        }
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 1);
        /* Only a safety net against a probe that corrupts a free list into
         * a loop: no probe runs for more than a fraction of a second. */
        alarm(60);
        char *argv[] = {(char *)"probes", (char *)name, NULL};
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            snprintf(why, len, "waitpid: %s", strerror(errno));
            return FAILED;
        }
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        snprintf(why, len, "signal %d (%s)", sig, strsignal(sig));
        return sig == SIGALRM ? HUNG : CAUGHT;
    }
    int code = WEXITSTATUS(status);
    snprintf(why, len, "exit %d", code);
    return code == 0 ? GOT_AWAY : code == BLOCKED ? BLOCKED_BY_ALLOCATOR : FAILED;
}

static int run_all(long min, bool verbose)
{
    static const char *const said[] = {"caught", "blocked", "got away", "hung", "FAILED"};
    const char *families[32];
    unsigned caught[32] = {0}, total[32] = {0}, nfam = 0, all = 0, failed = 0;
    for (size_t i = 0; i < NPROBES; i++) {
        unsigned f = 0;
        while (f < nfam && strcmp(families[f], probes[i].family) != 0)
            f++;
        if (f == nfam)
            families[nfam++] = probes[i].family;
        char name[80], why[80];
        probe_name(&probes[i], name, sizeof name);
        enum outcome o = spawn(name, verbose, why, sizeof why);
        total[f]++;
        if (o == CAUGHT || o == BLOCKED_BY_ALLOCATOR) {
            caught[f]++;
            all++;
        }
        if (o == FAILED)
            failed++;
        if (verbose || o == FAILED)
            printf("  %-34s %-9s %s\n", name, said[o], why);
    }
    printf("%-22s %6s %6s\n", "family", "caught", "of");
    for (unsigned f = 0; f < nfam; f++)
        printf("%-22s %6u %6u\n", families[f], caught[f], total[f]);
    printf("%-22s %6u %6zu\n", "total", all, NPROBES);
    if (failed) {
        printf("probes: %u probes could not run\n", failed);
        return 1;
    }
    if ((long)all < min) {
        printf("probes: %u caught, fewer than the %ld expected\n", all, min);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof source; i++)
        source[i] = junk(i + 5);
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < NPROBES; i++) {
            char name[80];
            probe_name(&probes[i], name, sizeof name);
            printf("%s %s\n", probes[i].family, name);
        }
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--all") == 0) {
        long min = 0;
        bool verbose = false;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--verbose") == 0) {
                verbose = true;
            } else if (strcmp(argv[i], "--min") == 0 && i + 1 < argc) {
                char *end;
                min = strtol(argv[++i], &end, 10);
                if (*end || min < 0) {
                    fprintf(stderr, "probes: --min takes a count, not '%s'\n", argv[i]);
                    return 2;
                }
            } else {
                fprintf(stderr, "probes: unknown argument '%s'\n", argv[i]);
                return 2;
            }
        }
        return run_all(min, verbose);
    }
    if (argc == 2 && argv[1][0] != '-')
        return run_one(argv[1]);
    fprintf(stderr, "usage: probes NAME | --list | --all [--min N] [--verbose]\n");
    return 2;
}
