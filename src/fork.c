/* fork: the handlers the constructor installs with pthread_atfork.
 *
 * The prepare handler takes no lock, and no fork ever waits for one:
 * - glibc's fork takes its stdio stream-list lock after the prepare
 *   handlers. Locks held from prepare to the fork deadlock against a thread
 *   that holds a FILE lock and allocates while another flushes every
 *   stream and so waits for that FILE lock with the list lock held (glibc
 *   bug 19431).
 * - fork is async-signal-safe: a signal handler may fork while the thread
 *   it interrupted holds one of our locks.
 *
 * So the child starts from the parent's memory as it was at the fork. A
 * lock found free there means its structure was whole: it changes only
 * under the lock, and the child sees each thread's stores in order up to
 * some point, so an unlock it sees comes after all the stores it released.
 * A lock found held means its structure may be halfway through a change:
 * by a thread the child does not have, or by this very thread, interrupted
 * by the signal whose handler forked, which finishes the change when the
 * handler returns. Such a structure is abandoned, not repaired: the child
 * puts a fresh one in its place, and the old one stays as it is, its lock
 * held, its memory never reused, for that change to finish on (the code
 * holds the structure's address from the moment it locks it). What an
 * abandoned structure held is lost to the child, as are the blocks in the
 * caches of the threads the child does not have.
 *
 *   cm_global_lock    arena creation: every step leaves a valid state (an
 *                     arena is published by one store): reset.
 *   arena locks       replaced, same index and tag (arena.c); blocks freed
 *                     back to an abandoned arena are dropped.
 *   sbrk heap         replaced; the child's heap grows from mmap (os.c).
 *   huge-block cache  replaced, empty; the registry of aligned huge blocks
 *                     changes by single stores: reset (huge.c).
 *   features' locks   their own handlers (seam.h).
 *
 * Paths that hold two locks still take them in one order: a feature's
 * outer lock, cm_global_lock, an arena lock, the heap or huge-block locks,
 * a feature's inner lock. */
#include <pthread.h>

#include "internal.h"

#define CM_MAX_FEATURE_CHILDREN 4

static void (*feature_children[CM_MAX_FEATURE_CHILDREN])(void);
static unsigned nfeature_children;

void cm_fork_register_child(void (*in_child)(void))
{
    if (nfeature_children == CM_MAX_FEATURE_CHILDREN)
        cm_fatal("too many features with fork handlers");
    feature_children[nfeature_children++] = in_child;
}

void *cm_fork_replace_if_held(cm_lock_t **now, size_t size)
{
    if (!cm_lock_abandon_if_held(*now))
        return NULL;
    cm_lock_t *fresh = cm_os_map((size + CM_PAGE_SIZE - 1) & ~(CM_PAGE_SIZE - 1));
    if (!fresh)
        cm_fatal("fork: no memory in the child to replace a structure left locked");
    __atomic_store_n(now, fresh, __ATOMIC_RELEASE);
    return fresh;
}

static void fork_child(void)
{
    cm_lock_reset(&cm_global_lock);
    cm_arena_fork_child();
    cm_os_fork_child();
    cm_huge_fork_child();
    cm_tcache_after_fork_child();
    cm_background_after_fork_child();
    for (unsigned i = 0; i < nfeature_children; i++)
        feature_children[i]();
}

void cm_fork_install(void)
{
    pthread_atfork(NULL, NULL, fork_child);
}
