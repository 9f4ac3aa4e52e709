/* A program with known leaks and known allocation sites, for the tests of
 * cmalloc-run --leaks and --profile (prof_reports.sh).
 *
 *   prof_target leaks          leaks 3 x 100 B in leak_three, 5000 B in
 *                              leak_big and 2 x 777 B in leak_in_thread,
 *                              a list of 3 x 48 B in leak_list (the head
 *                              lost, the others only through it), and
 *                              keeps 4444 B reachable from a global in keep
 *   prof_target printf         loses 3 x 64 B in lose_three, and prints
 *                              (stdout gets its buffer from malloc)
 *   prof_target profile        keeps 4000 x 1000 B live from hold_a and
 *                              1000 x 1000 B from hold_b, and allocates and
 *                              frees 64 MiB in churn
 *   prof_target signal SIG FILE  like profile, then raises SIG and waits for
 *                              FILE to be written
 *
 * The sites are separate functions that are never inlined, and each does
 * some work after its malloc so that the call is not a tail call. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static void *volatile sink;

NOINLINE static char *allocate(size_t n)
{
    char *p = malloc(n);
    if (!p) {
        perror("malloc");
        exit(1);
    }
    memset(p, 0x5a, n);
    return p;
}

NOINLINE void leak_three(void)
{
    for (int i = 0; i < 3; i++)
        sink = allocate(100);
}

NOINLINE void leak_big(void)
{
    sink = allocate(5000);
}

/* volatile: one call site, not a loop unrolled into two. */
static volatile int thread_leaks = 2;

NOINLINE static void *leak_in_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < thread_leaks; i++)
        sink = allocate(777);
    return NULL;
}

struct node {
    struct node *next;
    char payload[40];
};

NOINLINE void leak_list(void)
{
    struct node *head = NULL;
    for (int i = 0; i < 3; i++) {
        struct node *n = (struct node *)allocate(sizeof *n);
        n->next = head;
        head = n;
    }
    sink = head;
}

static char *volatile kept;

NOINLINE void keep(void)
{
    kept = allocate(4444);
}

NOINLINE void lose_three(void)
{
    for (int i = 0; i < 3; i++)
        sink = allocate(64);
}

NOINLINE void no_leak(void)
{
    for (int i = 0; i < 10000; i++)
        free(allocate((size_t)i % 3000));
}

static char *held_a[4000], *held_b[1000];

NOINLINE void hold_a(void)
{
    for (int i = 0; i < 4000; i++)
        held_a[i] = allocate(1000);
}

NOINLINE void hold_b(void)
{
    for (int i = 0; i < 1000; i++)
        held_b[i] = allocate(1000);
}

NOINLINE void churn(void)
{
    for (int i = 0; i < 64 * 1024; i++)
        free(allocate(1024));
}

static void release_held(void)
{
    for (int i = 0; i < 4000; i++)
        free(held_a[i]);
    for (int i = 0; i < 1000; i++)
        free(held_b[i]);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "leaks") == 0) {
        leak_three();
        leak_big();
        no_leak();
        pthread_t t;
        if (pthread_create(&t, NULL, leak_in_thread, NULL) != 0)
            return 1;
        pthread_join(t, NULL);
        leak_list();
        keep();
        /* The last block of each site must be lost too. */
        sink = NULL;
        return 0;
    }
    if (strcmp(mode, "printf") == 0) {
        lose_three();
        sink = NULL;
        printf("%d blocks of %d bytes lost\n", 3, 64);
        return 0;
    }
    if (strcmp(mode, "profile") == 0 || (strcmp(mode, "signal") == 0 && argc == 4)) {
        hold_a();
        hold_b();
        churn();
        if (strcmp(mode, "signal") == 0) {
            raise(atoi(argv[2]));
            struct stat st;
            for (int i = 0; i < 1000 && (stat(argv[3], &st) != 0 || st.st_size == 0); i++)
                usleep(10000);
            /* The dump may still be being written: let it finish. */
            usleep(200000);
        }
        release_held();
        hold_b();
        return 0;
    }
    fprintf(stderr, "usage: %s leaks | printf | profile | signal SIGNO FILE\n", argv[0]);
    return 2;
}
