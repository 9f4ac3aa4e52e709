/* A small futex mutex. It never allocates, needs no initialiser beyond zero
 * (so it works before any constructor has run), and a forked child can reset
 * it by storing zero. */
#ifndef CM_LOCK_H
#define CM_LOCK_H

#include <stdbool.h>

#include "prim.h"

typedef struct {
    int state;  /* 0 free, 1 held, 2 held with waiters, 3 abandoned */
} cm_lock_t;

/* A forked child abandons a lock it finds held (fork.c): whoever held it
 * may have left its structure halfway through a change. Nobody gets the
 * lock from then on, except that the forking thread, if it was the holder
 * (interrupted by the signal whose handler forked), unlocks it when it
 * resumes, its change then complete. */
#define CM_LOCK_ABANDONED 3

#define CM_LOCK_SPINS 64

static inline void cm_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline bool cm_lock_slow(cm_lock_t *l)
{
    for (int i = 0; i < CM_LOCK_SPINS; i++) {
        int seen = __atomic_load_n(&l->state, __ATOMIC_RELAXED);
        if (seen == 0 && __atomic_compare_exchange_n(&l->state, &seen, 1, 0, __ATOMIC_ACQUIRE,
                                                     __ATOMIC_RELAXED))
            return true;
        if (seen == CM_LOCK_ABANDONED)
            return false;
        cm_cpu_relax();
    }
    for (;;) {
        int seen = __atomic_load_n(&l->state, __ATOMIC_RELAXED);
        if (seen == CM_LOCK_ABANDONED)
            return false;
        if (seen == 0) {
            /* Taken as contended: other threads may be waiting too. */
            if (__atomic_compare_exchange_n(&l->state, &seen, 2, 0, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
                return true;
            continue;
        }
        if (seen == 1 && !__atomic_compare_exchange_n(&l->state, &seen, 2, 0, __ATOMIC_RELAXED,
                                                      __ATOMIC_RELAXED))
            continue;
        cm_prim_futex_wait(&l->state, 2);
    }
}

/* Takes the lock unless it is abandoned (or becomes so while this thread
 * waits, which only a forked child's resumed thread can see): then it
 * returns false without it. */
static inline bool cm_lock_live(cm_lock_t *l)
{
    int expected = 0;
    if (__builtin_expect(__atomic_compare_exchange_n(&l->state, &expected, 1, 0, __ATOMIC_ACQUIRE,
                                                     __ATOMIC_RELAXED),
                         1))
        return true;
    return cm_lock_slow(l);
}

/* For locks that are never abandoned: a forked child resets them. */
static inline void cm_lock(cm_lock_t *l)
{
    (void)cm_lock_live(l);
}

/* Non-zero when it got the lock. For code that must never wait, such as a
 * signal handler that may have interrupted the holder. */
static inline int cm_trylock(cm_lock_t *l)
{
    int expected = 0;
    return __atomic_compare_exchange_n(&l->state, &expected, 1, 0, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

static inline void cm_unlock(cm_lock_t *l)
{
    if (__builtin_expect(__atomic_exchange_n(&l->state, 0, __ATOMIC_RELEASE) == 2, 0))
        cm_prim_futex_wake(&l->state, 1);
}

/* In a forked child, for a lock whose structure is whole after every
 * store: whoever held it in the parent, it is free now. */
static inline void cm_lock_reset(cm_lock_t *l)
{
    __atomic_store_n(&l->state, 0, __ATOMIC_RELAXED);
}

/* Structures a forked child replaces when it finds them locked start with
 * their lock, and *now points to that of the one in use. Returns it,
 * locked: if the child abandoned the one this thread was waiting for, the
 * one in its place. */
static inline cm_lock_t *cm_lock_current(cm_lock_t *const *now)
{
    for (;;) {
        cm_lock_t *l = __atomic_load_n(now, __ATOMIC_ACQUIRE);
        if (cm_lock_live(l))
            return l;
    }
}

/* In a forked child: abandons the lock if it is held, and says whether it
 * was. */
static inline bool cm_lock_abandon_if_held(cm_lock_t *l)
{
    if (!__atomic_load_n(&l->state, __ATOMIC_RELAXED))
        return false;
    __atomic_store_n(&l->state, CM_LOCK_ABANDONED, __ATOMIC_RELAXED);
    return true;
}

#endif
