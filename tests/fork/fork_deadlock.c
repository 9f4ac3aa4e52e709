/* Forks that must never deadlock, under a watchdog that prints "deadlock"
 * and fails instead of hanging.
 *
 *   fork_deadlock signal N
 *       glibc's tst-mallocfork2 pattern: a single-threaded program
 *       allocates without pause while another process sends it N SIGUSR1s;
 *       the handler forks, so the fork often lands while malloc holds one
 *       of its locks in the very thread that forks. Every other child exits
 *       at once from the handler; the others return from it (the
 *       interrupted malloc or free finishes in the child), then allocate,
 *       check and free blocks before they exit.
 *   fork_deadlock signal-threads N
 *       the same while two more threads allocate and free each other's
 *       blocks, so the child also inherits locks held by threads it does
 *       not have.
 *   fork_deadlock stdio N
 *       glibc's tst-malloc-fork-deadlock pattern (glibc bug 19431): two
 *       threads allocate while holding a FILE lock, one calls fflush(NULL)
 *       (the stream-list lock, then every FILE lock), and the main thread
 *       forks N times; each child allocates and prints to the stream.
 *
 * Every block holds a pattern made from its address and size, checked
 * before it is freed, in parents and children alike.
 *
 * Exit status 0 when all went well; the watchdog (SIGALRM: 60 s without a
 * fork in the parent, 20 s in a child) prints "deadlock" and exits 3. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define SLOTS 64
#define PARENT_WATCHDOG 60
#define CHILD_WATCHDOG 20

enum { CHILD_OK = 0, CHILD_CORRUPT = 4, CHILD_NOMEM = 5 };

static const char *mode_name = "?";
static volatile sig_atomic_t in_child;
static volatile pid_t current_child;
static volatile sig_atomic_t children_failed;
static volatile sig_atomic_t forks_done;

static void say(const char *s)
{
    if (write(2, s, strlen(s)) < 0)
        return;
}

static void watchdog(int sig)
{
    (void)sig;
    say(in_child ? "fork_deadlock: deadlock in a child (" : "fork_deadlock: deadlock (");
    say(mode_name);
    say(")\n");
    if (!in_child && current_child > 0)
        kill(current_child, SIGKILL);
    _exit(3);
}

/* Blocks whose every byte depends on the address and the size. */
static unsigned char fill_byte(const void *p, size_t n)
{
    return (unsigned char)(((uintptr_t)p >> 4) ^ n ^ 0x5a);
}

static size_t block_size(uint64_t *rng)
{
    uint64_t r = tu_rand(rng);
    if (r % 64 == 0)
        return 1 + (size_t)(r >> 8) % (2u << 20);  /* up to 2 MiB: huge blocks */
    if (r % 8 == 1)
        return 1 + (size_t)(r >> 8) % (128u << 10);
    return 1 + (size_t)(r >> 8) % 2048;
}

struct block {
    unsigned char *p;
    size_t n;
};

static int check_block(const struct block *b)
{
    unsigned char want = fill_byte(b->p, b->n);
    /* Checking every byte of a huge block each time would dominate. */
    size_t step = b->n > 4096 ? 4093 : 1;
    for (size_t i = 0; i < b->n; i += step)
        if (b->p[i] != want)
            return 0;
    return b->n == 0 || b->p[b->n - 1] == want;
}

static int new_block(struct block *b, uint64_t *rng)
{
    size_t n = block_size(rng);
    uint64_t how = tu_rand(rng) % 8;
    unsigned char *p;
    if (how == 0)
        p = calloc(1, n);
    else if (how == 1)
        p = memalign((size_t)16 << (tu_rand(rng) % 9), n);
    else if (how == 2 && (tu_rand(rng) % 64) == 0)
        p = memalign((size_t)8 << 20, n);  /* the registry of aligned huge blocks */
    else
        p = malloc(n);
    if (!p)
        return 0;
    memset(p, fill_byte(p, n), n);
    b->p = p;
    b->n = n;
    return 1;
}

/* One step of the allocation loop: replace a random slot's block. Returns
 * 0 when a block was damaged or memory ran out. */
static int churn(struct block *slots, uint64_t *rng)
{
    struct block *b = &slots[tu_rand(rng) % SLOTS];
    if (b->p) {
        if (!check_block(b))
            return 0;
        if (tu_rand(rng) % 4 == 0) {
            size_t n = block_size(rng);
            unsigned char *q = realloc(b->p, n);
            if (!q)
                return 0;
            size_t kept = n < b->n ? n : b->n;
            for (size_t i = 0; i < kept; i += kept > 4096 ? 4093 : 1)
                if (q[i] != fill_byte(b->p, b->n))
                    return 0;
            memset(q, fill_byte(q, n), n);
            b->p = q;
            b->n = n;
            return 1;
        }
        free(b->p);
        b->p = NULL;
    }
    return new_block(b, rng);
}

static void free_all(struct block *slots)
{
    for (unsigned i = 0; i < SLOTS; i++) {
        free(slots[i].p);
        slots[i].p = NULL;
    }
}

/* A child that returned from the handler: it goes on allocating on what it
 * inherited, checks every block and exits. */
static void child_work(struct block *slots, uint64_t *rng)
{
    for (int i = 0; i < 500; i++)
        if (!churn(slots, rng))
            _exit(CHILD_CORRUPT);
    for (unsigned i = 0; i < SLOTS; i++)
        if (slots[i].p && !check_block(&slots[i]))
            _exit(CHILD_CORRUPT);
    free_all(slots);
    _exit(CHILD_OK);
}

static void reap(pid_t pid)
{
    int status;
    current_child = pid;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    current_child = 0;
    /* The watchdog waits for progress, not for the whole run. */
    alarm(PARENT_WATCHDOG);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != CHILD_OK) {
        children_failed++;
        say("fork_deadlock: a child failed\n");
    }
}

/* ---- signal modes ---- */

/* The handler tells the sender it is done through this pipe, so that no
 * signal is lost to one still pending. */
static int ack[2];

static void fork_in_handler(int sig)
{
    (void)sig;
    int saved = errno;
    pid_t pid = fork();
    if (pid == 0) {
        alarm(CHILD_WATCHDOG);
        close(ack[1]);
        if (forks_done % 2)
            _exit(CHILD_OK);
        in_child = 1;
        return;
    }
    forks_done++;
    if (pid > 0)
        reap(pid);
    else
        children_failed++;
    char byte = 1;
    if (write(ack[1], &byte, 1) != 1)
        children_failed++;
    errno = saved;
}

static int stop_threads;

static struct block shared[SLOTS];

/* Allocates into a table shared with the other thread, so that each frees
 * blocks of the other's arena. */
static void *allocator_thread(void *arg)
{
    uint64_t rng = tu_seed((uint64_t)(uintptr_t)arg, 3);
    while (!__atomic_load_n(&stop_threads, __ATOMIC_RELAXED)) {
        struct block mine;
        if (!new_block(&mine, &rng))
            continue;
        unsigned i = (unsigned)(tu_rand(&rng) % SLOTS);
        unsigned char *old_p = __atomic_exchange_n(&shared[i].p, NULL, __ATOMIC_ACQ_REL);
        if (old_p) {
            /* Only one thread owns a slot's block between the exchanges. */
            free(old_p);
        }
        free(mine.p);
        if (tu_rand(&rng) % 2) {
            struct block b;
            if (new_block(&b, &rng)) {
                unsigned char *prev = __atomic_exchange_n(&shared[i].p, b.p, __ATOMIC_ACQ_REL);
                free(prev);
            }
        }
    }
    return NULL;
}

static int signal_mode(long n, int threads)
{
    struct block slots[SLOTS] = {{0}};
    uint64_t rng = tu_seed(1, 7);
    pthread_t t[2];
    struct sigaction sa = {.sa_handler = fork_in_handler};
    sigemptyset(&sa.sa_mask);
    TU_CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");

    pid_t parent = getpid();
    TU_CHECK(pipe(ack) == 0, "pipe");
    pid_t sender = fork();
    TU_CHECK(sender >= 0, "fork of the sender");
    if (sender == 0) {
        uint64_t r = tu_seed(2, 9);
        char byte;
        for (long i = 0; i < n && getppid() == parent; i++) {
            usleep((useconds_t)(tu_rand(&r) % 300));
            kill(parent, SIGUSR1);
            if (read(ack[0], &byte, 1) != 1)
                break;
        }
        _exit(0);
    }
    close(ack[0]);
    /* Only the main thread takes the signal: the threads start with it
     * blocked. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (int k = 0; k < threads; k++)
        TU_CHECK(pthread_create(&t[k], NULL, allocator_thread, (void *)(uintptr_t)(k + 1)) == 0,
                 "pthread_create");
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    for (;;) {
        for (int i = 0; i < 64; i++) {
            if (!churn(slots, &rng)) {
                if (in_child)
                    _exit(CHILD_CORRUPT);
                TU_CHECK(0, "a block was damaged or malloc failed in the parent");
            }
            if (in_child)
                child_work(slots, &rng);
        }
        int status;
        if (waitpid(sender, &status, WNOHANG) == sender)
            break;
    }
    __atomic_store_n(&stop_threads, 1, __ATOMIC_RELAXED);
    for (int k = 0; k < threads; k++)
        pthread_join(t[k], NULL);
    free_all(slots);
    for (unsigned i = 0; i < SLOTS; i++)
        free(shared[i].p);
    printf("fork_deadlock %s: %d forks from a signal handler, %d children failed\n", mode_name,
           (int)forks_done, (int)children_failed);
    return children_failed ? 1 : 0;
}

/* ---- stdio mode ---- */

static FILE *stream;

static void *locked_allocator(void *arg)
{
    uint64_t rng = tu_seed((uint64_t)(uintptr_t)arg, 5);
    while (!__atomic_load_n(&stop_threads, __ATOMIC_RELAXED)) {
        flockfile(stream);
        for (int i = 0; i < 8; i++) {
            struct block b;
            if (new_block(&b, &rng))
                free(b.p);
        }
        fprintf(stream, "x");
        funlockfile(stream);
    }
    return NULL;
}

static void *flusher(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stop_threads, __ATOMIC_RELAXED))
        fflush(NULL);
    return NULL;
}

static int stdio_mode(long n)
{
    pthread_t t[3];
    stream = fopen("/dev/null", "w");
    TU_CHECK(stream != NULL, "fopen /dev/null");
    TU_CHECK(pthread_create(&t[0], NULL, locked_allocator, (void *)1) == 0, "pthread_create");
    TU_CHECK(pthread_create(&t[1], NULL, locked_allocator, (void *)2) == 0, "pthread_create");
    TU_CHECK(pthread_create(&t[2], NULL, flusher, NULL) == 0, "pthread_create");
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        TU_CHECK(pid >= 0, "fork");
        if (pid == 0) {
            in_child = 1;
            alarm(CHILD_WATCHDOG);
            struct block slots[SLOTS] = {{0}};
            uint64_t rng = tu_seed((uint64_t)i, 11);
            for (int k = 0; k < 200; k++)
                if (!churn(slots, &rng))
                    _exit(CHILD_CORRUPT);
            free_all(slots);
            fprintf(stream, "child");
            fflush(stream);
            _exit(CHILD_OK);
        }
        forks_done++;
        reap(pid);
    }
    __atomic_store_n(&stop_threads, 1, __ATOMIC_RELAXED);
    for (int k = 0; k < 3; k++)
        pthread_join(t[k], NULL);
    fclose(stream);
    printf("fork_deadlock stdio: %d forks, %d children failed\n", (int)forks_done,
           (int)children_failed);
    return children_failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s signal|signal-threads|stdio N\n", argv[0]);
        return 2;
    }
    mode_name = argv[1];
    long n = atol(argv[2]);
    if (tu_quick())
        n = n / 10 + 1;
    tu_expect_cmalloc();
    signal(SIGALRM, watchdog);
    alarm(PARENT_WATCHDOG);
    if (strcmp(argv[1], "signal") == 0)
        return signal_mode(n, 0);
    if (strcmp(argv[1], "signal-threads") == 0)
        return signal_mode(n, 2);
    if (strcmp(argv[1], "stdio") == 0)
        return stdio_mode(n);
    fprintf(stderr, "usage: %s signal|signal-threads|stdio N\n", argv[0]);
    return 2;
}
