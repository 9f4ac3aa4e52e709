/* The background purge thread (option background_purge, off by default):
 * a thread that runs the purge policy's decay on every arena, and expires
 * the cache of huge mappings, twice per purge delay, so that memory a
 * program has left alone goes back to the kernel even when the program
 * makes no further call. Calls then do less purging themselves: the decay
 * is left to the thread, and a tick only enforces the cap.
 *
 * It is never started in a process that has not asked for it. When asked,
 * it is started lazily, by the first refill or huge allocation after the
 * constructor has run, from the start of that slow path, where no lock is
 * held: pthread_create may call malloc, which then finds the state
 * STARTING and goes on without starting another. In a forked child it does
 * not exist: the child marks it wanted again, and its own first slow path
 * starts it. */
#include "internal.h"

int cm_background_state;

static unsigned period_ms(void)
{
    size_t half = cm_opt.purge_delay_ms / 2;
    return half < 10 ? 10 : half > 1000 ? 1000 : (unsigned)half;
}

static void purge_arena(struct cm_arena *a)
{
    cm_lock(&a->lock);
    cm_purge_background(a);
    cm_unlock(&a->lock);
}

static void *background_main(void *unused)
{
    (void)unused;
    for (;;) {
        cm_prim_sleep_ms(period_ms());
        for (unsigned i = 0, n = __atomic_load_n(&cm_narenas, __ATOMIC_ACQUIRE); i < n; i++)
            purge_arena(cm_arenas[i]);
        for (unsigned i = 0; i < cm_nextra_arenas; i++)
            purge_arena(cm_extra_arenas[i]);
        cm_huge_cache_expire();
    }
    return NULL;
}

void cm_background_enable(void)
{
    if (cm_opt.background_purge)
        __atomic_store_n(&cm_background_state, CM_BG_WANTED, __ATOMIC_RELEASE);
}

CM_NOINLINE void cm_background_start(void)
{
    int wanted = CM_BG_WANTED;
    if (!__atomic_compare_exchange_n(&cm_background_state, &wanted, CM_BG_STARTING, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return;
    bool ok = cm_prim_thread_start(background_main, NULL, "cmalloc-purge");
    __atomic_store_n(&cm_background_state, ok ? CM_BG_RUNNING : CM_BG_FAILED, __ATOMIC_RELEASE);
    if (!ok)
        cm_message("background_purge: cannot start the thread; purging on calls only");
}

void cm_background_after_fork_child(void)
{
    if (cm_background_state != CM_BG_OFF)
        cm_background_state = CM_BG_WANTED;
}
