/* fork(), system() and popen() from a multithreaded program while other
 * threads keep allocating.
 *
 * Background threads run random malloc/calloc/realloc/free (small, large,
 * mmap-sized).  The main thread forks a few hundred times; each child
 * checks and frees blocks inherited from the parent, allocates and frees on
 * its own (sometimes in a new thread, sometimes in a grandchild) and exits.
 * A second thread runs system() and popen() at the same time.
 *
 * A deadlock in the allocator's fork handling shows up as a child (alarm
 * 20 s) or the parent (alarm 100 s) killed by SIGALRM; ctest has its own
 * TIMEOUT on top.
 *
 * usage: fork_stress [forks]
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
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#define ALLOCATORS 3
#define KEEP 64

static atomic_int stop;
static atomic_long bg_ops;

struct item {
    unsigned char *p;
    size_t n;
    uint64_t id;
};

static size_t random_size(uint64_t *rng)
{
    uint64_t r = tu_rand(rng);
    unsigned pick = (unsigned)(r % 100);
    r >>= 8;
    if (pick < 70)
        return 1 + (size_t)(r % 512);
    if (pick < 95)
        return 513 + (size_t)(r % 20000);
    if (pick < 99)
        return 20000 + (size_t)(r % 500000);
    return 1 * MiB + (size_t)(r % (3 * MiB));
}

/* Background allocation traffic in the parent. */
static void *allocator(void *arg)
{
    uint64_t rng = tu_seed((uintptr_t)arg, 99);
    struct item slot[128];
    uint64_t id = (uint64_t)(uintptr_t)arg << 40;
    size_t i;
    memset(slot, 0, sizeof slot);
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        struct item *it = &slot[tu_rand(&rng) % 128];
        if (it->p) {
            size_t bad = tu_verify(it->p, it->n, it->id);
            TU_CHECK(bad == (size_t)-1, "background block corrupted at %zu", bad);
            if (tu_rand(&rng) % 4 == 0) {
                size_t n2 = random_size(&rng);
                unsigned char *q = realloc(it->p, n2);
                TU_CHECK(q != NULL, "realloc");
                bad = tu_verify(q, it->n < n2 ? it->n : n2, it->id);
                TU_CHECK(bad == (size_t)-1, "realloc lost byte %zu", bad);
                it->p = q;
                it->n = n2;
                it->id = ++id;
                tu_fill(it->p, it->n, it->id);
            } else {
                free(it->p);
                it->p = NULL;
            }
        } else {
            it->n = random_size(&rng);
            it->id = ++id;
            it->p = (it->id % 7 == 0) ? calloc(1, it->n) : malloc(it->n);
            TU_CHECK(it->p != NULL, "malloc(%zu)", it->n);
            tu_fill(it->p, it->n, it->id);
        }
        atomic_fetch_add_explicit(&bg_ops, 1, memory_order_relaxed);
    }
    for (i = 0; i < 128; i++)
        free(slot[i].p);
    return NULL;
}

/* system() and popen() while the others fork and allocate. */
static void *spawner(void *arg)
{
    int rounds = (int)(intptr_t)arg, i;
    for (i = 0; i < rounds && !atomic_load(&stop); i++) {
        char cmd[64], want[64], line[128];
        FILE *fp;
        int rc = system("exit 3");
        TU_CHECK(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 3,
                 "system() returned %d", rc);
        snprintf(cmd, sizeof cmd, "echo popen-%d", i);
        snprintf(want, sizeof want, "popen-%d\n", i);
        fp = popen(cmd, "r");
        TU_CHECK(fp != NULL, "popen: %s", strerror(errno));
        TU_CHECK(fgets(line, sizeof line, fp) != NULL, "popen: no output");
        TU_CHECK(strcmp(line, want) == 0, "popen read '%s'", line);
        rc = pclose(fp);
        TU_CHECK(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "pclose returned %d", rc);
    }
    return NULL;
}

static void *child_thread(void *arg)
{
    int i;
    (void)arg;
    for (i = 0; i < 500; i++) {
        void *p = malloc((size_t)(i % 50) * 40 + 1);
        if (!p)
            _exit(4);
        memset(p, i, (size_t)(i % 50) * 40 + 1);
        free(p);
    }
    return NULL;
}

/* Work done in every child.  Returns the exit status. */
static int child_work(struct item *keep, int iteration)
{
    uint64_t rng = tu_seed((uint64_t)getpid(), (uint64_t)iteration);
    void *mine[200];
    int i;
    alarm(20);
    /* the parent's blocks are intact in the child, and can be resized and
     * freed there */
    for (i = 0; i < KEEP; i++) {
        unsigned char *q;
        if (tu_verify(keep[i].p, keep[i].n, keep[i].id) != (size_t)-1)
            return 3;
        q = realloc(keep[i].p, keep[i].n * 2 + 1);
        if (!q || tu_verify(q, keep[i].n, keep[i].id) != (size_t)-1)
            return 3;
        free(q);
    }
    for (i = 0; i < 200; i++) {
        size_t n = random_size(&rng);
        mine[i] = (i % 3) ? malloc(n) : calloc(n, 1);
        if (!mine[i])
            return 4;
        tu_fill(mine[i], n, (uint64_t)i);
        if (i % 2)
            free(mine[i]);
    }
    for (i = 0; i < 200; i += 2)
        free(mine[i]);
    if (iteration % 10 == 0) {
        pthread_t t;
        if (pthread_create(&t, NULL, child_thread, NULL) != 0)
            return 5;
        pthread_join(t, NULL);
    }
    if (iteration % 25 == 0) {
        /* a grandchild */
        int st;
        pid_t g = fork();
        if (g == 0) {
            void *p;
            alarm(20);
            p = malloc(100000);
            if (!p)
                _exit(4);
            memset(p, 1, 100000);
            free(p);
            _exit(0);
        }
        if (g < 0 || waitpid(g, &st, 0) != g || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return 6;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int forks = argc > 1 ? atoi(argv[1]) : 300;
    pthread_t bg[ALLOCATORS], sp;
    struct item keep[KEEP];
    int i, failures = 0;
    uint64_t rng = 4242;
    alarm(100);
    tu_expect_cmalloc();
    for (i = 0; i < KEEP; i++) {
        keep[i].n = random_size(&rng);
        keep[i].id = (uint64_t)i + 1;
        keep[i].p = malloc(keep[i].n);
        TU_CHECK(keep[i].p != NULL, "malloc");
        tu_fill(keep[i].p, keep[i].n, keep[i].id);
    }
    for (i = 0; i < ALLOCATORS; i++)
        TU_CHECK(pthread_create(&bg[i], NULL, allocator, (void *)(uintptr_t)(i + 1)) == 0,
                 "pthread_create");
    TU_CHECK(pthread_create(&sp, NULL, spawner, (void *)(intptr_t)(forks / 5)) == 0,
             "pthread_create");
    fflush(stdout);
    fflush(stderr);
    for (i = 0; i < forks; i++) {
        int st;
        pid_t pid = fork();
        TU_CHECK(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
            int rc = child_work(keep, i);
            if (i % 3 == 0)
                exit(rc); /* run the atexit/stdio path too */
            _exit(rc);
        }
        TU_CHECK(waitpid(pid, &st, 0) == pid, "waitpid: %s", strerror(errno));
        if (WIFSIGNALED(st)) {
            fprintf(stderr, "fork %d: child killed by signal %d (%s)%s\n", i, WTERMSIG(st),
                    strsignal(WTERMSIG(st)),
                    WTERMSIG(st) == SIGALRM ? " - deadlock in the child?" : "");
            failures++;
        } else if (WEXITSTATUS(st) != 0) {
            fprintf(stderr, "fork %d: child exited with status %d\n", i, WEXITSTATUS(st));
            failures++;
        }
        if (failures > 5)
            break;
        /* the parent keeps using its blocks */
        if (i % 50 == 0) {
            int k;
            for (k = 0; k < KEEP; k++)
                TU_CHECK(tu_verify(keep[k].p, keep[k].n, keep[k].id) == (size_t)-1,
                         "parent block corrupted after fork");
        }
    }
    TU_CHECK(pthread_join(sp, NULL) == 0, "pthread_join");
    atomic_store(&stop, 1);
    for (i = 0; i < ALLOCATORS; i++)
        TU_CHECK(pthread_join(bg[i], NULL) == 0, "pthread_join");
    for (i = 0; i < KEEP; i++) {
        TU_CHECK(tu_verify(keep[i].p, keep[i].n, keep[i].id) == (size_t)-1, "corrupted");
        free(keep[i].p);
    }
    printf("fork_stress: %d forks, %d system+popen, %ld background operations, %d failures\n",
           forks, forks / 5, (long)atomic_load(&bg_ops), failures);
    return failures ? 1 : 0;
}
