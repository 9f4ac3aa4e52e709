/* Hardened mode: ctest runs this with CMALLOC_OPTIONS=hardened=on. Each
 * protection is exercised in a forked child, which must die of the bug with
 * the expected signal and one-line message naming the block; the parent
 * checks, so that one run covers every protection.
 *
 *   hardened          run every check (exit 0 on success, abort otherwise)
 *   hardened overflow N    overflow an N-byte block by one (must die)
 *   hardened order    print the address ranks of fresh blocks, for the
 *                     comparison of two runs (randomised order)
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* Enough frees of another size class to push a block out of the
 * quarantine (1024 blocks at most). */
#define QUARANTINE_FLUSH 1100

struct outcome {
    int status;
    char err[8192];
};

/* What the child wrote to stderr, and how it ended. */
static void run_child(void (*fn)(size_t), size_t arg, struct outcome *out)
{
    int fds[2];
    TU_CHECK(pipe(fds) == 0, "pipe failed");
    fflush(NULL);
    pid_t pid = fork();
    TU_CHECK(pid >= 0, "fork failed");
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t got;
    while ((got = read(fds[0], out->err + len, sizeof out->err - 1 - len)) > 0)
        len += (size_t)got;
    out->err[len] = '\0';
    close(fds[0]);
    TU_CHECK(waitpid(pid, &out->status, 0) == pid, "waitpid failed");
}

/* The child announces the block it is about to damage with "block 0x...". */
static void announce(const void *p)
{
    fprintf(stderr, "block %p\n", p);
    fflush(stderr);
}

/* The child must have died of signal sig, printing "what ADDR" where ADDR
 * is the block it announced. */
static void expect_death(const char *name, void (*fn)(size_t), size_t arg, int sig,
                         const char *what)
{
    struct outcome o;
    void *block = NULL;
    char want[256];
    run_child(fn, arg, &o);
    const char *line = strstr(o.err, "block ");
    TU_CHECK(line && sscanf(line, "block %p", &block) == 1, "%s(%zu): no block announced: %s",
             name, arg, o.err);
    TU_CHECK(WIFSIGNALED(o.status) && WTERMSIG(o.status) == sig,
             "%s(%zu): the child did not die of signal %d (status 0x%x); stderr: %s", name, arg,
             sig, (unsigned)o.status, o.err);
    if (what) {
        snprintf(want, sizeof want, "%s %p", what, block);
        TU_CHECK(strstr(o.err, want), "%s(%zu): expected \"%s\" in: %s", name, arg, want, o.err);
    }
    printf("ok: %s(%zu)\n", name, arg);
}

static void push_out_of_quarantine(void)
{
    for (int i = 0; i < QUARANTINE_FLUSH; i++)
        free(malloc(tu_opaque(200)));
}

/* ---- the bugs, one per child ---- */

/* The classic off-by-one: a string's NUL one byte past the block. */
static void overflow_by_one(size_t n)
{
    char *p = malloc(tu_opaque(n));
    announce(p);
    p[n] = '\0';
    free(p);
}

static void overflow_then_realloc(size_t n)
{
    char *p = malloc(tu_opaque(n));
    announce(p);
    p[n] = '\0';
    p = realloc(p, tu_opaque(n * 2));
    free(p);
}

/* A process whose first allocation is large and comes before cmalloc's
 * constructor (as libstdc++'s emergency pool does): the small blocks after
 * it are guarded too, so malloc's countdown must not be left holding that
 * first request. The forked child execs this program again with the early
 * allocator preloaded, so that the process starts afresh. */
static const char *self_path;

static void large_first_then_overflow(size_t n)
{
    char arg[32], preload[4096];
    snprintf(arg, sizeof arg, "%zu", n);
    snprintf(preload, sizeof preload, "%s:%s", CMALLOC_LIB, EARLY_ALLOC_LIB);
    setenv("LD_PRELOAD", preload, 1);
    setenv("EARLY_ALLOC_SIZE", "200000", 1);
    execl(self_path, self_path, "overflow", arg, (char *)NULL);
    _exit(127);
}

/* A huge block grown by realloc (in place or by moving its pages) keeps
 * its checks. */
static void overflow_after_growth(size_t n)
{
    char *p = malloc(tu_opaque(n / 2));
    p = realloc(p, tu_opaque(n));
    announce(p);
    p[n] = '\0';
    free(p);
}

/* Written while the block waits in the quarantine: seen when it leaves. */
static void write_in_quarantine(size_t offset)
{
    char *p = malloc(tu_opaque(64));
    announce(p);
    free(p);
    ((volatile char *)p)[offset] = '\0';
    push_out_of_quarantine();
}

/* Written after it left the quarantine: seen when it is handed out again. */
static void write_after_release(size_t offset)
{
    char *p = malloc(tu_opaque(64));
    announce(p);
    free(p);
    push_out_of_quarantine();
    ((volatile char *)p)[offset] = '\0';
    for (int i = 0; i < 10000; i++)
        malloc(tu_opaque(64));
}

static void double_free_quarantined(size_t n)
{
    void *p = malloc(tu_opaque(n));
    announce(p);
    free(p);
    free(tu_opaque_ptr(p));
}

static void double_free_released(size_t n)
{
    void *p = malloc(tu_opaque(n));
    announce(p);
    free(p);
    push_out_of_quarantine();
    free(tu_opaque_ptr(p));
}

/* Where the child got to, shared with the parent. */
static volatile size_t *progress;

/* Walks byte by byte past the end of a huge block: the guard page must stop
 * it before the next 16-byte boundary. */
static void walk_past_huge(size_t n)
{
    volatile char *p = malloc(tu_opaque(n));
    announce((void *)p);
    for (size_t i = 0; i < 2 * 4096; i++) {
        *progress = i;
        p[n + i] = 1;
    }
}

/* ---- normal use ---- */

/* A buffer grown and shrunk by realloc through the small classes and into
 * huge blocks (resized in place, moved, or moved by their pages) keeps its
 * contents. */
static void check_realloc_steps(void)
{
    enum { STEP = 4096 };
    const size_t limit = 3 * MiB;
    unsigned char *p = NULL;
    size_t len = 0;
    for (; len < limit; len += STEP) {
        p = realloc(p, tu_opaque(len + STEP));
        TU_CHECK(p, "realloc to %zu failed", len + STEP);
        tu_fill_range(p, len, STEP, 7);
    }
    TU_CHECK(tu_verify(p, len, 7) == (size_t)-1, "realloc lost data growing to %zu", len);
    for (; len > STEP; len -= 64 * STEP) {
        p = realloc(p, tu_opaque(len));
        TU_CHECK(p && tu_verify(p, len, 7) == (size_t)-1, "realloc lost data shrinking to %zu",
                 len);
    }
    free(p);
    /* Shrunk by more than the trim threshold (32 MiB): the mapping shrinks. */
    p = malloc(tu_opaque(48 * MiB));
    TU_CHECK(p, "malloc of 48 MiB failed");
    tu_fill(p, 48 * MiB, 9);
    p = realloc(p, tu_opaque(4 * MiB));
    TU_CHECK(p && tu_verify(p, 4 * MiB, 9) == (size_t)-1, "realloc lost data shrinking 48 -> 4 MiB");
    free(p);
    printf("ok: realloc steps keep the data\n");
}

/* The malloc that starts cmalloc up, here in a library's constructor that
 * runs before cmalloc's, gets a guarded block too: its free is no error. */
static void check_first_block(void)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "LD_PRELOAD='%s:%s' /bin/true", CMALLOC_LIB, EARLY_ALLOC_LIB);
    int status = system(cmd);
    TU_CHECK(status == 0, "'%s' failed (status 0x%x)", cmd, (unsigned)status);
    printf("ok: the first block is guarded\n");
}

/* ---- randomised order ---- */

#define ORDER_BLOCKS 64

/* The rank of each of the first blocks of a fresh size class in address
 * order: with the order randomised, two runs must differ. */
static void print_order(void)
{
    uintptr_t a[ORDER_BLOCKS];
    for (int i = 0; i < ORDER_BLOCKS; i++)
        a[i] = (uintptr_t)malloc(tu_opaque(700));
    for (int i = 0; i < ORDER_BLOCKS; i++) {
        int rank = 0;
        for (int j = 0; j < ORDER_BLOCKS; j++)
            rank += a[j] < a[i];
        printf("%d ", rank);
    }
    printf("\n");
}

static void order_of_run(char *out, size_t cap)
{
    char cmd[4200];
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    TU_CHECK(len > 0, "readlink /proc/self/exe failed");
    self[len] = '\0';
    snprintf(cmd, sizeof cmd, "'%s' order", self);
    FILE *f = popen(cmd, "r");
    TU_CHECK(f && fgets(out, (int)cap, f), "running '%s' failed", cmd);
    TU_CHECK(pclose(f) == 0, "'%s' failed", cmd);
}

static void check_order_randomised(void)
{
    char first[1024], second[1024];
    order_of_run(first, sizeof first);
    order_of_run(second, sizeof second);
    TU_CHECK(strcmp(first, second) != 0,
             "two runs handed out blocks in the same address order: %s", first);
    printf("ok: allocation order differs between runs\n");
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], "overflow") == 0) {
        overflow_by_one((size_t)strtoul(argv[2], NULL, 10));
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "order") == 0) {
        print_order();
        return 0;
    }
    const char *opts = getenv("CMALLOC_OPTIONS");
    TU_CHECK(opts && strstr(opts, "hardened=on"), "run with CMALLOC_OPTIONS=hardened=on");

    /* 24: the NUL lands in the pad; 32: in the canary (class 48 has no
     * pad); 3000: a larger class; 100000: too large for the quarantine. */
    static const size_t sizes[] = {24, 32, 3000, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        expect_death("overflow_by_one", overflow_by_one, sizes[i], SIGABRT,
                     "cmalloc: free(): heap overflow detected after");
    /* An unguarded block would be taken for a guarded one whose trailer is
     * overwritten: the message must name the block's size instead. */
    self_path = argv[0];
    expect_death("large_first_then_overflow", large_first_then_overflow, 24, SIGABRT,
                 "cmalloc: free(): heap overflow detected after");
    struct outcome early;
    run_child(large_first_then_overflow, 24, &early);
    TU_CHECK(strstr(early.err, "(block size 24)"),
             "large_first_then_overflow: the block was not guarded: %s", early.err);
    /* Seen by realloc, or by the free of the block it moves from. */
    expect_death("overflow_then_realloc", overflow_then_realloc, 24, SIGABRT,
                 "(): heap overflow detected after");

    expect_death("overflow_after_growth", overflow_after_growth, 4 * MiB - 100, SIGABRT,
                 "cmalloc: free(): heap overflow detected after");

    expect_death("write_in_quarantine", write_in_quarantine, 0, SIGABRT,
                 "cmalloc: free(): write after free detected in");
    expect_death("write_in_quarantine", write_in_quarantine, 40, SIGABRT,
                 "cmalloc: free(): write after free detected in");
    expect_death("write_after_release", write_after_release, 40, SIGABRT,
                 "cmalloc: malloc(): write after free detected in");

    expect_death("double_free_quarantined", double_free_quarantined, 40, SIGABRT,
                 "cmalloc: free(): double free of");
    expect_death("double_free_released", double_free_released, 40, SIGABRT,
                 "cmalloc: free(): double free of");

    progress = mmap(NULL, sizeof *progress, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                    -1, 0);
    TU_CHECK(progress != MAP_FAILED, "mmap failed");
    static const size_t huge[] = {3 * MiB, 3 * MiB - 100};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        expect_death("walk_past_huge", walk_past_huge, huge[i], SIGSEGV, NULL);
        TU_CHECK(*progress < 16, "walked %zu bytes past a %zu-byte block before a fault",
                 *progress, huge[i]);
    }

    check_realloc_steps();
    check_first_block();
    check_order_randomised();
    return 0;
}
