/* The seams the core offers the features above it (src/ext/: hooks,
 * hardened mode, Valgrind support). The core names no feature: features
 * attach once, at initialisation, when the core calls cm_ext_attach, and
 * from then on the core calls them back only through what they registered
 * here, and only from slow paths.
 *
 * - Calls. While the mode has CM_EXT_CALLS, malloc's countdown stays at 0
 *   and every call of the malloc family goes to cm_ext (free only from its
 *   slow path: a block of a feature's arena, or every block when the mode
 *   also has CM_EXT_FREES, which gives threads no tag). The features then
 *   use the core's own paths (cm_cache_alloc, cm_core_free, ...), which
 *   never come back here.
 * - Arenas. A feature may register arenas of its own (the blocks it traces):
 *   they get tags the threads never hold, so their blocks never take the
 *   free fast path, and the core trims, reports and forks them with its own.
 * - Locks. Registered locks are taken around fork in the order of fork.c's
 *   table.
 * - Slow-path callbacks: the order of a cache refill, a run given back to
 *   the pages, an inaccessible tail after huge blocks, and blocks a feature
 *   holds that the core still counts as handed out. */
#ifndef CM_SEAM_H
#define CM_SEAM_H

#include <stdbool.h>
#include <stddef.h>

#include "cmalloc.h"
#include "lock.h"

#pragma GCC visibility push(hidden)

struct cm_arena;
struct cm_run;

enum cm_ext_mode {
    CM_EXT_CALLS = 1,  /* the malloc family goes to cm_ext */
    CM_EXT_FREES = 2,  /* and every free, from the free slow path */
};

struct cm_ext {
    void *(*alloc)(size_t n, size_t align, enum cmalloc_function fn);
    void (*free)(void *p, enum cmalloc_function fn);
    void *(*realloc)(void *p, size_t n);
    size_t (*usable)(void *p);
    /* cmalloc_owns while every free goes to cm_ext. */
    int (*owns)(const void *p);
    /* May reorder the n blocks a refill just put in a cache bin, listed in
     * the order malloc would hand them out. */
    void (*refill_order)(void **blocks, unsigned n);
    /* r, a run of blocks, goes back to the page allocator. */
    void (*run_released)(const struct cm_run *r);
    /* Adds to counts[cls] the blocks of arena a that the feature holds
     * although the core counts them as handed out; only_try: never wait
     * for a lock (a signal handler's report). */
    void (*held_blocks)(const struct cm_arena *a, size_t *counts, bool only_try);
    /* In a forked child, after the core reset its locks. */
    void (*after_fork_child)(void);
    /* Bytes at the end of every huge block's mapping that must stay
     * inaccessible. */
    size_t huge_tail;
    /* No thread caches: their slots keep pointers to blocks handed out,
     * which a feature that scans memory for them must not find. */
    bool no_thread_cache;
};

/* What the features registered; all zero without them. */
extern struct cm_ext cm_ext;

/* Called once during initialisation, before the first block is handed out:
 * the features register here. The minimal build has none. */
#ifdef CMALLOC_MINIMAL
static inline void cm_ext_attach(void)
{
}
#else
void cm_ext_attach(void);
#endif

/* Turns mode bits (enum cm_ext_mode) on or off for the whole process. */
void cm_ext_set_mode(unsigned bits, bool on);

/* Registers an arena of a feature's, zero-initialised but for its lock,
 * under a name the statistics give it. At most CM_MAX_EXTRA_ARENAS. */
#define CM_MAX_EXTRA_ARENAS 4
void cm_arena_register_extra(struct cm_arena *a, const char *name);

/* Features' locks, by where they sit in the lock order (fork.c). */
enum cm_lock_rank {
    CM_LOCK_OUTER,  /* held while the feature calls the malloc family */
    CM_LOCK_INNER,  /* taken inside the core's locks, around no other */
};
void cm_fork_register_lock(cm_lock_t *lock, enum cm_lock_rank rank);

#pragma GCC visibility pop

#endif
