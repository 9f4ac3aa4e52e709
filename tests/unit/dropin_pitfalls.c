/* Drop-in pitfalls that have bitten other malloc replacements, each checked
 * against cmalloc (linked in, so every malloc call below is cmalloc's):
 *
 *   early:   malloc from the executable's .preinit_array, which runs before
 *            any shared library's constructor, so before cmalloc's own;
 *   sbrk:    another party moves the program break between our heap
 *            segments; its memory must stay intact and ours keep working;
 *   tls:     a thread-specific destructor that runs after cmalloc's own
 *            thread-exit hook still allocates and frees correctly, as does
 *            a thread that only frees blocks other threads allocated.
 *
 * Exit status 0 when every check holds; a message and 1 otherwise. */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmalloc.h"

static int failures;

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);          \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
            failures++;                                                   \
        }                                                                 \
    } while (0)

/* ---- early ---- */

static char *early_block;
static int early_owned;

static void before_constructors(void)
{
    early_block = malloc(100);
    if (early_block) {
        memcpy(early_block, "allocated before any constructor", 33);
        early_owned = cmalloc_owns(early_block);
    }
    void *tmp = calloc(10, 10);
    free(tmp);
}

__attribute__((section(".preinit_array"), used)) static void (*preinit)(void) = before_constructors;

static void check_early(void)
{
    CHECK(early_block != NULL, "malloc from .preinit_array returned NULL");
    if (!early_block)
        return;
    CHECK(early_owned, "the preinit block was not cmalloc's");
    CHECK(strcmp(early_block, "allocated before any constructor") == 0, "preinit block changed");
    early_block = realloc(early_block, 5000);
    CHECK(early_block && strcmp(early_block, "allocated before any constructor") == 0,
          "realloc of the preinit block lost its contents");
    free(early_block);
}

/* ---- sbrk ---- */

#define SBRK_ROUNDS 6
#define BLOCKS_PER_ROUND 3000
#define BLOCK_SIZE 2000  /* 6 MB a round: every round needs a new segment */

static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed * 31 + i);
}

static int intact(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed * 31 + i))
            return 0;
    return 1;
}

static void check_sbrk(void)
{
    static unsigned char *blocks[SBRK_ROUNDS][BLOCKS_PER_ROUND];
    unsigned char *foreign[SBRK_ROUNDS];
    size_t foreign_size[SBRK_ROUNDS];

    for (int r = 0; r < SBRK_ROUNDS; r++) {
        /* An odd size, so our next segment cannot start where it ends. */
        foreign_size[r] = 4096 * (size_t)(r + 1) + 123;
        foreign[r] = sbrk((intptr_t)foreign_size[r]);
        CHECK(foreign[r] != (void *)-1, "sbrk failed");
        if (foreign[r] == (void *)-1)
            return;
        fill(foreign[r], foreign_size[r], 1000u + (unsigned)r);
        for (int i = 0; i < BLOCKS_PER_ROUND; i++) {
            blocks[r][i] = malloc(BLOCK_SIZE);
            CHECK(blocks[r][i] != NULL, "malloc failed after the break moved");
            if (!blocks[r][i])
                return;
            fill(blocks[r][i], BLOCK_SIZE, (unsigned)(r * BLOCKS_PER_ROUND + i));
        }
    }
    for (int r = 0; r < SBRK_ROUNDS; r++) {
        CHECK(intact(foreign[r], foreign_size[r], 1000u + (unsigned)r),
              "memory another party took with sbrk was overwritten (round %d)", r);
        for (int i = 0; i < BLOCKS_PER_ROUND; i++) {
            CHECK(intact(blocks[r][i], BLOCK_SIZE, (unsigned)(r * BLOCKS_PER_ROUND + i)),
                  "block %d of round %d overlaps the foreign sbrk memory", i, r);
            free(blocks[r][i]);
        }
    }
    malloc_trim(0);
    for (int r = 0; r < SBRK_ROUNDS; r++)
        CHECK(intact(foreign[r], foreign_size[r], 1000u + (unsigned)r),
              "malloc_trim released or cleared memory that was not cmalloc's (round %d)", r);
}

/* ---- tls ---- */

static pthread_key_t late_key;
static void *handoff[64];

static void late_destructor(void *arg)
{
    /* Runs after cmalloc's own thread-exit hook (keys are destroyed in the
     * order they were created, and cmalloc's was created first). */
    free(arg);
    for (int i = 0; i < 200; i++) {
        char *p = malloc((size_t)(16 + i * 24));
        if (!p)
            abort();
        memset(p, i, (size_t)(16 + i * 24));
        free(p);
    }
    char *kept = malloc(64);
    if (!kept)
        abort();
    strcpy(kept, "from a late destructor");
    handoff[63] = kept;
}

static void *thread_with_late_destructor(void *arg)
{
    (void)arg;
    void *p = malloc(256);
    pthread_setspecific(late_key, p);
    for (int i = 0; i < 63; i++)
        handoff[i] = malloc((size_t)(32 + i * 8));
    return NULL;
}

static void *thread_that_only_frees(void *arg)
{
    (void)arg;
    for (int i = 0; i < 63; i++)
        free(handoff[i]);
    return NULL;
}

static void check_tls(void)
{
    CHECK(pthread_key_create(&late_key, late_destructor) == 0, "pthread_key_create failed");
    for (int round = 0; round < 50; round++) {
        pthread_t t;
        pthread_create(&t, NULL, thread_with_late_destructor, NULL);
        pthread_join(t, NULL);
        CHECK(handoff[63] && strcmp(handoff[63], "from a late destructor") == 0,
              "a block allocated in a late destructor is wrong");
        CHECK(cmalloc_owns(handoff[63]), "a late destructor's block is not cmalloc's");
        free(handoff[63]);
        handoff[63] = NULL;
        pthread_create(&t, NULL, thread_that_only_frees, NULL);
        pthread_join(t, NULL);
    }
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    if (!only || !strcmp(only, "early"))
        check_early();
    if (!only || !strcmp(only, "sbrk"))
        check_sbrk();
    if (!only || !strcmp(only, "tls"))
        check_tls();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    puts("all drop-in checks passed");
    return 0;
}
