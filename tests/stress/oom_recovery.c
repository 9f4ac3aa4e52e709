/* Out of memory under RLIMIT_AS: for each block size, allocate until malloc
 * fails, and check that the failure is NULL with ENOMEM, that calloc,
 * memalign and realloc then fail cleanly too (a failed realloc keeping its
 * block), and that once everything is freed and trimmed, the address space
 * is really back. The first pass goes from the largest size down, the
 * second from the smallest up, so each size is measured once early and once
 * after the others have filled and freed the address space; the later count
 * must be at least 90% of the earlier one.
 * Exit status 0 on success, 1 with a message otherwise. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "testutil.h"

#define LIMIT ((rlim_t)256 << 20)
#define MAX_BLOCKS 200000

static void *blocks[MAX_BLOCKS];

static size_t fail(const char *what, size_t size)
{
    fprintf(stderr, "FAIL: %s (block size %zu)\n", what, size);
    return (size_t)-1;
}

/* Allocates blocks of one size until malloc fails or MAX_BLOCKS are live,
 * checks the failure modes at the limit, frees everything and trims.
 * Returns how many blocks fitted, or (size_t)-1 after reporting a failure. */
static size_t fill_until_oom(size_t size)
{
    size_t n = 0;
    for (; n < MAX_BLOCKS; n++) {
        errno = 0;
        blocks[n] = malloc(tu_opaque(size));
        if (!blocks[n]) {
            if (errno != ENOMEM)
                return fail("malloc failed without ENOMEM", size);
            break;
        }
        memset(blocks[n], 0, size);
    }
    if (n > 0 && n < MAX_BLOCKS) {
        errno = 0;
        if (calloc(tu_opaque(64), tu_opaque(1 << 20)) || errno != ENOMEM)
            return fail("calloc did not fail with ENOMEM at the limit", size);
        errno = 0;
        if (memalign(tu_opaque(1 << 20), tu_opaque(64 << 20)) || errno != ENOMEM)
            return fail("memalign did not fail with ENOMEM at the limit", size);
        errno = 0;
        if (realloc(blocks[0], tu_opaque(128 << 20)) || errno != ENOMEM)
            return fail("realloc did not fail with ENOMEM at the limit", size);
        if (((unsigned char *)blocks[0])[size - 1] != 0)
            return fail("a failed realloc changed its block", size);
    }
    for (size_t i = 0; i < n; i++)
        free(blocks[i]);
    malloc_trim(0);
    return n;
}

int main(void)
{
    static const size_t sizes[] = {24, 700, 5000, 70000, 600000, 3 << 20};
    struct rlimit rl = {LIMIT, LIMIT};
    tu_expect_cmalloc();
    if (setrlimit(RLIMIT_AS, &rl) != 0) {
        perror("setrlimit");
        return 1;
    }
    enum { NSIZES = sizeof sizes / sizeof sizes[0] };
    size_t first_pass[NSIZES];
    for (int pass = 0; pass < 2; pass++) {
        for (size_t step = 0; step < NSIZES; step++) {
            size_t k = pass == 0 ? NSIZES - 1 - step : step;
            size_t size = sizes[k], n = fill_until_oom(size);
            if (n == (size_t)-1)
                return 1;
            printf("pass %d, size %zu: %zu blocks\n", pass + 1, size, n);
            if (pass == 0)
                first_pass[k] = n;
            else if (n < first_pass[k] - first_pass[k] / 10) {
                fail("memory freed after earlier sizes did not come back", size);
                return 1;
            }
        }
    }
    puts("recovered after every size");
    return 0;
}
