/* fork: the handlers the constructor installs with pthread_atfork, and the
 * lock order they follow.
 *
 * Every path that holds two of these locks takes them in this order, and
 * the prepare handler takes them all in it, so that the child starts with
 * no lock held by a thread it does not have:
 *
 *   1. features' outer locks   held while a feature calls the malloc family
 *   2. cm_global_lock          arena creation, initialisation
 *   3. arena locks             core arenas by index, then features' arenas
 *   4. cm_heap_lock            the sbrk heap, the huge-block cache
 *   5. features' inner locks   taken inside the core's, around no other
 *
 * In the child, only the forking thread exists: locks are reset rather
 * than unlocked (their state in the parent means nothing there), and the
 * caches of the other threads stop counting as their arenas' threads. */
#include <pthread.h>

#include "internal.h"

#define CM_MAX_FEATURE_LOCKS 4

static cm_lock_t *feature_locks[2][CM_MAX_FEATURE_LOCKS];
static unsigned nfeature_locks[2];

void cm_fork_register_lock(cm_lock_t *lock, enum cm_lock_rank rank)
{
    if (nfeature_locks[rank] == CM_MAX_FEATURE_LOCKS)
        cm_fatal("too many feature locks of rank %d", (int)rank);
    feature_locks[rank][nfeature_locks[rank]++] = lock;
}

static void lock_features(enum cm_lock_rank rank)
{
    for (unsigned i = 0; i < nfeature_locks[rank]; i++)
        cm_lock(feature_locks[rank][i]);
}

static void unlock_features(enum cm_lock_rank rank)
{
    for (unsigned i = nfeature_locks[rank]; i-- > 0;)
        cm_unlock(feature_locks[rank][i]);
}

static void reset_features(enum cm_lock_rank rank)
{
    for (unsigned i = 0; i < nfeature_locks[rank]; i++)
        cm_lock_reset(feature_locks[rank][i]);
}

static void fork_prepare(void)
{
    lock_features(CM_LOCK_OUTER);
    cm_lock(&cm_global_lock);
    for (unsigned i = 0; i < cm_narenas; i++)
        cm_lock(&cm_arenas[i]->lock);
    for (unsigned i = 0; i < cm_nextra_arenas; i++)
        cm_lock(&cm_extra_arenas[i]->lock);
    cm_lock(&cm_heap_lock);
    lock_features(CM_LOCK_INNER);
}

static void fork_parent(void)
{
    unlock_features(CM_LOCK_INNER);
    cm_unlock(&cm_heap_lock);
    for (unsigned i = cm_nextra_arenas; i-- > 0;)
        cm_unlock(&cm_extra_arenas[i]->lock);
    for (unsigned i = cm_narenas; i-- > 0;)
        cm_unlock(&cm_arenas[i]->lock);
    cm_unlock(&cm_global_lock);
    unlock_features(CM_LOCK_OUTER);
}

static void fork_child(void)
{
    reset_features(CM_LOCK_INNER);
    cm_lock_reset(&cm_heap_lock);
    for (unsigned i = 0; i < cm_nextra_arenas; i++)
        cm_lock_reset(&cm_extra_arenas[i]->lock);
    for (unsigned i = 0; i < cm_narenas; i++)
        cm_lock_reset(&cm_arenas[i]->lock);
    cm_lock_reset(&cm_global_lock);
    reset_features(CM_LOCK_OUTER);
    cm_tcache_after_fork_child();
    cm_background_after_fork_child();
    if (cm_ext.after_fork_child)
        cm_ext.after_fork_child();
}

void cm_fork_install(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}
