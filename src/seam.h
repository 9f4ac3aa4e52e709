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
 * - Fork. A forked child calls what the features registered with
 *   cm_fork_register_child (fork.c): a lock found held there belongs to a
 *   structure that may be halfway through a change.
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
    /* mallopt(M_PERTURB, value): fill blocks handed out and given back
     * with a byte made from value, as glibc does; 0 turns it off. */
    void (*set_perturb)(int value);
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
 * under a name the statistics give it. At most CM_MAX_EXTRA_ARENAS.
 * Returns its slot in cm_extra_arenas, where a forked child may put a
 * fresh arena in its place (fork.c): the feature finds it there. */
#define CM_MAX_EXTRA_ARENAS 4
unsigned cm_arena_register_extra(struct cm_arena *a, const char *name);

/* in_child runs in a forked child, after the core has replaced what it
 * found locked. For each of the feature's locks found held, it puts a whole
 * structure under a free lock in place of the old one, and leaves the old
 * one as it is: its holder may be the forking thread itself, which resumes
 * its change when the signal handler that forked returns (fork.c). At most
 * 4 features. */
void cm_fork_register_child(void (*in_child)(void));

/* In a forked child, for a structure of size bytes that starts with its
 * lock, *now pointing to that lock (cm_lock_current): if the lock is held,
 * abandons it and points *now to a zeroed structure in its place, which it
 * returns; otherwise returns NULL. It never fails (the child dies instead). */
void *cm_fork_replace_if_held(cm_lock_t **now, size_t size);

#pragma GCC visibility pop

#endif
