/* A library that allocates and frees in its constructor. Preloaded after
 * cmalloc (LD_PRELOAD=libcmalloc.so.1:libearly_alloc.so), its constructor
 * runs before cmalloc's, so its malloc is the one that starts cmalloc up:
 * that block must be guarded like any other, or hardened mode would take
 * its free for an overflow, and memcheck for an invalid free.
 * EARLY_ALLOC_SIZE sets the size (default 24). */
#include <stdlib.h>
#include <string.h>

__attribute__((constructor)) static void allocate_early(void)
{
    const char *env = getenv("EARLY_ALLOC_SIZE");
    size_t n = env ? strtoul(env, NULL, 10) : 24;
    char *volatile p = malloc(n);
    if (p) {
        memset(p, 'e', n);
        free(p);
    }
}
