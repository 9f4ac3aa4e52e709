/* A small-block malloc/free loop for first throughput comparisons: each of
 * T threads keeps a window of W live blocks of 16..256 bytes and replaces
 * one per step, in a fixed pseudo-random order (fixed seed), so every step
 * is one malloc and one free. Prints nothing but a checksum, so the run
 * time is the measure; run it under different allocators with LD_PRELOAD.
 *
 *   alloc_loop THREADS STEPS_PER_THREAD [WINDOW] */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct job {
    long steps;
    unsigned window;
    unsigned seed;
    uint64_t checksum;
};

static void *run(void *arg)
{
    struct job *job = arg;
    unsigned char **live = calloc(job->window, sizeof *live);
    uint32_t x = job->seed;
    uint64_t sum = 0;
    if (!live)
        abort();
    for (long i = 0; i < job->steps; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        unsigned slot = x % job->window;
        size_t size = 16 + (x >> 8) % 241;
        if (live[slot]) {
            sum += live[slot][0];
            free(live[slot]);
        }
        live[slot] = malloc(size);
        if (!live[slot])
            abort();
        live[slot][0] = (unsigned char)size;
    }
    for (unsigned i = 0; i < job->window; i++)
        free(live[i]);
    free(live);
    job->checksum = sum;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s THREADS STEPS_PER_THREAD [WINDOW]\n", argv[0]);
        return 2;
    }
    int threads = atoi(argv[1]);
    long steps = atol(argv[2]);
    unsigned window = argc > 3 ? (unsigned)atoi(argv[3]) : 1000;
    if (threads < 1 || threads > 256 || steps < 1 || window < 1) {
        fprintf(stderr, "%s: bad arguments\n", argv[0]);
        return 2;
    }
    pthread_t tids[256];
    struct job jobs[256];
    for (int t = 0; t < threads; t++) {
        jobs[t] = (struct job){steps, window, 2463534242u + (unsigned)t, 0};
        if (pthread_create(&tids[t], NULL, run, &jobs[t]) != 0)
            return 1;
    }
    uint64_t total = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tids[t], NULL);
        total += jobs[t].checksum;
    }
    printf("%llu\n", (unsigned long long)total);
    return 0;
}
