/* Hooks: the registry behind cmalloc_hook_install, the sampler that picks
 * which allocations to report, and the traced arena those come from.
 *
 * Installing the first hook sets CM_FEAT_HOOKS, which sends the malloc
 * family to dispatch.c; removing the last one clears it, and the fast paths
 * are back. With a sample interval, each thread counts down the bytes it
 * allocates from an exponentially distributed start (mean: the interval),
 * in the core's own malloc countdown, so that an allocation that does not
 * cross zero stays on malloc's fast path, and reports the allocation that
 * crosses zero, as tcmalloc's sampler does:
 * each byte is equally likely to be picked, so big blocks are seen more
 * often, and weight = size / P(sampled) makes sums unbiased.
 *
 * A hook runs with this thread's depth raised, and nothing is reported
 * while it is: what a hook allocates is neither reported nor traced. Slots
 * are read without the lock; a thread counts itself into a slot while it
 * runs its hook, so remove can wait for the hook to be idle and install
 * never reuses a slot that a thread is still in. */
#include <errno.h>
#include <sched.h>

#include "ext.h"

struct hook_slot {
    cmalloc_hook_fn fn;
    void *arg;
    unsigned running;   /* threads inside this slot */
};

/* Under hooks_lock, which a forked child that finds it held just resets:
 * every change is a single store, and the hooks bit follows from the slots
 * (after_fork_child). */
static struct hook_slot slots[CMALLOC_MAX_HOOKS];
static size_t sample_interval;
static cm_lock_t hooks_lock;

/* Starts at 1 so that a thread's zeroed state is out of date. */
unsigned cm_sample_generation = 1;
__thread struct cm_sampler cm_sampler_tls __attribute__((tls_model("initial-exec")));

static struct cm_arena traced_arena_first;
static unsigned traced_slot;

/* The traced arena now: a forked child may have replaced the first. */
static struct cm_arena *traced_arena(void)
{
    return cm_extra_arenas[traced_slot];
}

bool cm_hooks_arena_is_traced(const struct cm_arena *a)
{
    return a->tag == traced_arena()->tag;
}

/* ---- sampling ---- */

static uint64_t next_random(struct cm_sampler *t)
{
    return cm_random_next(&t->rng, (uint64_t)(uintptr_t)t ^ cm_hot.link_secret);
}

/* -ln(u) for u uniform in (0, 1], from 53 random bits; no libm inside
 * malloc. ln(m * 2^e) = e ln 2 + 2 atanh((m - 1) / (m + 1)), m in [1, 2). */
static double neg_log_uniform(uint64_t bits)
{
    union {
        double d;
        uint64_t u;
    } v = {.d = (double)((bits >> 11) + 1) * 0x1p-53};
    int e = (int)((v.u >> 52) & 0x7ff) - 1023;
    v.u = (v.u & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1023) << 52);
    double s = (v.d - 1) / (v.d + 1), s2 = s * s, term = s, sum = 0;
    for (int k = 1; k < 40; k += 2) {
        sum += term / k;
        term *= s2;
    }
    return -(2 * sum + e * 0.69314718055994531);
}

/* exp(-x) for x >= 0: exp(-x) = 2^-k exp(-r), r = x - k ln 2 in [0, ln 2). */
static double exp_neg(double x)
{
    if (x > 700)
        return 0;
    int k = (int)(x / 0.69314718055994531);
    double r = x - k * 0.69314718055994531, term = 1, sum = 1;
    for (int i = 1; i < 20; i++) {
        term *= -r / i;
        sum += term;
    }
    while (k-- > 0)
        sum *= 0.5;
    return sum;
}

static uint64_t draw_countdown(struct cm_sampler *t, size_t interval)
{
    double bytes = neg_log_uniform(next_random(t)) * (double)interval;
    return bytes < 1 ? 1 : bytes > 0x1p62 ? UINT64_C(1) << 62 : (uint64_t)bytes;
}

/* What a sampled allocation of n bytes stands for: n / P(sampled). */
size_t cm_hooks_weight(size_t n)
{
    size_t interval = __atomic_load_n(&sample_interval, __ATOMIC_RELAXED);
    if (interval == 0)
        return n;
    double size = n ? (double)n : 1;
    double p = 1 - exp_neg(size / (double)interval);
    double w = p > 0 ? size / p : (double)interval;
    return w >= 0x1p63 ? SIZE_MAX : (size_t)w;
}

/* The bytes until this thread's next sample are the core's malloc
 * countdown, so that allocations that are not sampled stay on malloc's
 * fast path; the core counts the bytes for the statistics as it goes down,
 * and a countdown moved by cm_countdown_arm keeps that count as it was.
 * While the guards hold the countdown at 0 to see every call, the sampler
 * keeps its own. */
static bool own_countdown(void)
{
    return cm_features_now() & CM_FEAT_GUARDS;
}

static uint64_t bytes_left(const struct cm_sampler *t)
{
    return own_countdown() ? t->bytes_left : cm_tls.countdown;
}

static void set_bytes_left(struct cm_sampler *t, uint64_t bytes)
{
    if (own_countdown())
        t->bytes_left = bytes;
    else
        cm_countdown_arm(bytes);
}

bool cm_sample_skip(size_t n)
{
    struct cm_sampler *t = &cm_sampler_tls;
    if (cm_likely(n < cm_tls.countdown &&
                  t->generation == __atomic_load_n(&cm_sample_generation, __ATOMIC_RELAXED))) {
        cm_tls.countdown -= n;
        return true;
    }
    return false;
}

bool cm_hooks_should_trace(size_t n, size_t *weight)
{
    struct cm_sampler *t = &cm_sampler_tls;
    if (t->depth)
        return false;
    size_t interval = __atomic_load_n(&sample_interval, __ATOMIC_RELAXED);
    if (interval == 0) {
        *weight = n;
        return true;
    }
    unsigned generation = __atomic_load_n(&cm_sample_generation, __ATOMIC_RELAXED);
    if (t->generation != generation) {
        t->generation = generation;
        set_bytes_left(t, draw_countdown(t, interval));
    }
    uint64_t size = n ? n : 1, left = bytes_left(t);
    if (size < left) {
        set_bytes_left(t, left - size);
        return false;
    }
    set_bytes_left(t, draw_countdown(t, interval));
    *weight = cm_hooks_weight(n);
    return true;
}

/* ---- traced blocks ---- */

void *cm_traced_alloc(size_t n, size_t align)
{
    cm_ensure_init();
    cm_count_request(n);
    unsigned cls = 0;
    if (!cm_maps_own(n))
        cls = align > CM_ALIGNMENT ? cm_aligned_class(align, n) : cm_size_class(n);
    if (!cls) {
        void *p = cm_huge_alloc(n, align > CM_ALIGNMENT ? align : 0);
        if (p)
            cm_huge_set_mark(cm_locate(p).segment, true);
        return p;
    }
    void *p = cm_arena_alloc(traced_arena(), cls);
    if (!p)
        errno = ENOMEM;
    return p;
}

/* ---- reporting ---- */

void cm_hooks_report(const struct cmalloc_event *ev)
{
    struct cm_sampler *t = &cm_sampler_tls;
    if (t->depth)
        return;
    t->depth++;
    for (unsigned i = 0; i < CMALLOC_MAX_HOOKS; i++) {
        struct hook_slot *slot = &slots[i];
        if (!__atomic_load_n(&slot->fn, __ATOMIC_RELAXED))
            continue;
        __atomic_fetch_add(&slot->running, 1, __ATOMIC_SEQ_CST);
        cmalloc_hook_fn fn = __atomic_load_n(&slot->fn, __ATOMIC_SEQ_CST);
        if (fn) {
            t->slot = i;
            fn(ev, __atomic_load_n(&slot->arg, __ATOMIC_RELAXED));
        }
        __atomic_fetch_sub(&slot->running, 1, __ATOMIC_RELEASE);
    }
    t->depth--;
}

static void wait_idle(struct hook_slot *slot)
{
    while (__atomic_load_n(&slot->running, __ATOMIC_SEQ_CST))
        sched_yield();
}

static unsigned count_hooks(void)
{
    unsigned n = 0;
    for (unsigned i = 0; i < CMALLOC_MAX_HOOKS; i++)
        n += __atomic_load_n(&slots[i].fn, __ATOMIC_RELAXED) != NULL;
    return n;
}

static void set_hooks_bit(bool on)
{
    cm_features_set(CM_FEAT_HOOKS, on);
}

CM_EXPORT int cmalloc_hook_install(cmalloc_hook_fn fn, void *arg, size_t interval)
{
    if (!fn)
        return EINVAL;
    cm_ensure_init();
    cm_lock(&hooks_lock);
    struct hook_slot *free_slot = NULL;
    int err = 0;
    for (unsigned i = 0; i < CMALLOC_MAX_HOOKS; i++) {
        if (slots[i].fn == fn && slots[i].arg == arg)
            err = EEXIST;
        else if (!slots[i].fn && !free_slot)
            free_slot = &slots[i];
    }
    if (!err && count_hooks() && interval != sample_interval)
        err = EBUSY;
    if (!err && !free_slot)
        err = ENOSPC;
    if (!err) {
        wait_idle(free_slot);
        if (interval != sample_interval) {
            __atomic_store_n(&sample_interval, interval, __ATOMIC_RELAXED);
            __atomic_fetch_add(&cm_sample_generation, 1, __ATOMIC_RELAXED);
        }
        __atomic_store_n(&free_slot->arg, arg, __ATOMIC_RELAXED);
        __atomic_store_n(&free_slot->fn, fn, __ATOMIC_SEQ_CST);
        set_hooks_bit(true);
    }
    cm_unlock(&hooks_lock);
    return err;
}

CM_EXPORT int cmalloc_hook_remove(cmalloc_hook_fn fn, void *arg)
{
    struct hook_slot *slot = NULL;
    cm_lock(&hooks_lock);
    for (unsigned i = 0; i < CMALLOC_MAX_HOOKS && !slot; i++) {
        if (slots[i].fn == fn && fn && slots[i].arg == arg)
            slot = &slots[i];
    }
    if (slot) {
        __atomic_store_n(&slot->fn, NULL, __ATOMIC_SEQ_CST);
        if (!count_hooks())
            set_hooks_bit(false);
    }
    cm_unlock(&hooks_lock);
    if (!slot)
        return ENOENT;
    /* A hook that removes itself would wait for itself. */
    if (!cm_sampler_tls.depth)
        wait_idle(slot);
    return 0;
}

/* ---- attaching ---- */

/* Of the threads inside hooks, only this one (if it forked from a hook)
 * exists in a forked child. A thread that held hooks_lock at the fork may
 * have stored a hook and not yet set the hooks bit, or the reverse. */
static void after_fork_child(void)
{
    for (unsigned i = 0; i < CMALLOC_MAX_HOOKS; i++)
        slots[i].running = cm_sampler_tls.depth && cm_sampler_tls.slot == i;
    if (__atomic_load_n(&hooks_lock.state, __ATOMIC_RELAXED)) {
        cm_lock_reset(&hooks_lock);
        set_hooks_bit(count_hooks() > 0);
    }
}

void cm_hooks_attach(void)
{
    traced_slot = cm_arena_register_extra(&traced_arena_first, "the blocks reported to hooks");
    cm_fork_register_child(after_fork_child);
}
