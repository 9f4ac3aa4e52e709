/* The features above the core: hooks with sampling, hardened mode and
 * Valgrind support. They reach the core only through what it offers
 * (internal.h and its seams, seam.h); the core never names them.
 *
 * dispatch.c is where calls arrive from the core's seams: it wraps the core
 * paths with the guards (hardened.c, valgrind.c) and the hooks (hooks.c). */
#ifndef CM_EXT_H
#define CM_EXT_H

#include "internal.h"

#pragma GCC visibility push(hidden)

/* ---- dispatch.c ---- */
enum cm_feature {
    CM_FEAT_HOOKS = 1,     /* hooks.c: at least one hook is installed */
    CM_FEAT_HARDENED = 2,  /* hardened.c: hardened mode */
    CM_FEAT_VALGRIND = 4,  /* valgrind.c: running under Valgrind */
    CM_FEAT_PERTURB = 8,   /* dispatch.c: mallopt(M_PERTURB) */
};
#define CM_FEAT_GUARDS (CM_FEAT_HARDENED | CM_FEAT_VALGRIND)

/* The features on now (enum cm_feature); the guards are decided once, at
 * attach time, hooks come and go. */
extern uint8_t cm_features;
void cm_features_set(unsigned bits, bool on);

static inline unsigned cm_features_now(void)
{
    return __atomic_load_n(&cm_features, __ATOMIC_RELAXED);
}

void *cm_ext_alloc(size_t n, size_t align, enum cmalloc_function fn);
void cm_ext_free(void *p, enum cmalloc_function fn);
void *cm_ext_realloc(void *p, size_t n);
size_t cm_ext_usable(void *p);

/* ---- hooks.c: the hook registry, sampling and traced blocks ----
 * A block whose allocation was reported is "traced": it lives in the traced
 * arena, a feature arena of the core's, or is a huge block marked by
 * cm_huge_set_mark, so free() finds out without a lookup, and it never
 * enters a thread cache, so it cannot come back untraced. */
bool cm_hooks_arena_is_traced(const struct cm_arena *a);
void cm_hooks_attach(void);

/* Per-thread hook state, in initial-exec TLS like the cache. The bytes
 * until the next sample are the core's malloc countdown itself, or
 * bytes_left while the guards keep that at 0. */
struct cm_sampler {
    uint64_t bytes_left;
    uint64_t rng;
    unsigned generation;   /* of the interval the countdown was drawn for */
    unsigned depth;        /* > 0 while this thread runs a hook */
    unsigned slot;         /* the slot of the hook it runs */
};
extern __thread struct cm_sampler cm_sampler_tls __attribute__((tls_model("initial-exec")));
extern unsigned cm_sample_generation;

/* Whether an allocation of n bytes is certainly not sampled, taking its
 * bytes off the core's countdown when it is not (only without the guards);
 * when it may be, the countdown is left alone and cm_hooks_should_trace
 * decides. */
bool cm_sample_skip(size_t n);

bool cm_hooks_should_trace(size_t n, size_t *weight);
size_t cm_hooks_weight(size_t n);
void *cm_traced_alloc(size_t n, size_t align);
void cm_hooks_report(const struct cmalloc_event *ev);

/* ---- hardened.c and valgrind.c: per-block guards (CM_FEAT_GUARDS) ----
 * The core hands out blocks of cm_guard_request(n) bytes; the guards keep
 * what they need in the extra room (the requested size, a canary). */
void cm_guard_attach(void);
size_t cm_guard_request(size_t n);
void *cm_guard_after_alloc(void *p, size_t n, bool zero);
bool cm_guard_before_free(void *p);
size_t cm_guard_usable(void *p, size_t core_usable);
/* Resizes p in place, or a huge block by moving its pages; NULL when ext.c
 * must move it by copying. */
void *cm_guard_realloc(void *p, size_t n);
/* Freed blocks wait in the quarantine, where the core still counts them as
 * handed out: what cmalloc_owns must know. */
int cm_guard_owns(const void *p);
/* Hardened mode: gives back the address ranges of freed huge blocks it
 * keeps reserved; whether there were any. */
bool cm_guard_drop_reservations(void);

/* Memcheck client requests (valgrind.c), compiled in with CMALLOC_VALGRIND. */
#ifdef CM_VALGRIND
bool cm_valgrind_running(void);
void cm_valgrind_alloc(void *p, size_t n, bool zeroed);
void cm_valgrind_free(void *p);
void cm_valgrind_noaccess(const void *p, size_t n);
void cm_valgrind_defined(const void *p, size_t n);
void cm_valgrind_undefined(const void *p, size_t n);
void cm_valgrind_quiet(bool quiet);
#else
static inline bool cm_valgrind_running(void)
{
    return false;
}
static inline void cm_valgrind_alloc(void *p, size_t n, bool zeroed)
{
    (void)p, (void)n, (void)zeroed;
}
static inline void cm_valgrind_free(void *p)
{
    (void)p;
}
static inline void cm_valgrind_noaccess(const void *p, size_t n)
{
    (void)p, (void)n;
}
static inline void cm_valgrind_defined(const void *p, size_t n)
{
    (void)p, (void)n;
}
static inline void cm_valgrind_undefined(const void *p, size_t n)
{
    (void)p, (void)n;
}
static inline void cm_valgrind_quiet(bool quiet)
{
    (void)quiet;
}
#endif


#pragma GCC visibility pop

#endif
