/* A small futex mutex. It never allocates, needs no initialiser beyond zero
 * (so it works before any constructor has run), and a forked child can reset
 * it by storing zero. */
#ifndef CM_LOCK_H
#define CM_LOCK_H

#include "prim.h"

typedef struct {
    int state;  /* 0 free, 1 held, 2 held with waiters */
} cm_lock_t;

#define CM_LOCK_SPINS 64

static inline void cm_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline void cm_lock_slow(cm_lock_t *l)
{
    for (int i = 0; i < CM_LOCK_SPINS; i++) {
        int expected = 0;
        if (__atomic_load_n(&l->state, __ATOMIC_RELAXED) == 0 &&
            __atomic_compare_exchange_n(&l->state, &expected, 1, 0,
                                        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return;
        cm_cpu_relax();
    }
    while (__atomic_exchange_n(&l->state, 2, __ATOMIC_ACQUIRE) != 0)
        cm_prim_futex_wait(&l->state, 2);
}

static inline void cm_lock(cm_lock_t *l)
{
    int expected = 0;
    if (__builtin_expect(!__atomic_compare_exchange_n(&l->state, &expected, 1, 0,
                                                      __ATOMIC_ACQUIRE,
                                                      __ATOMIC_RELAXED), 0))
        cm_lock_slow(l);
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

/* In a forked child only the forking thread exists, so whatever state the
 * lock had in the parent is meaningless. */
static inline void cm_lock_reset(cm_lock_t *l)
{
    __atomic_store_n(&l->state, 0, __ATOMIC_RELAXED);
}

#endif
