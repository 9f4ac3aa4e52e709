/* The ext paths: where the core's seams (seam.h) send the malloc family
 * while a hook is installed, in hardened mode or under Valgrind, and the
 * attachment of the features at initialisation.
 *
 * They are the core paths with two layers around them. The guards
 * (hardened.c, valgrind.c) ask the core for a little more room per block
 * and check or annotate each block as it is handed out and given back. The
 * hooks (hooks.c) decide which allocations to report, take those from the
 * traced arena, and report their allocation, move and free.
 *
 * A free or a move is reported before the block is released: once it is,
 * another thread may get the same address, and its ALLOC event must not
 * arrive before our FREE. */
#include <errno.h>
#include <string.h>

#include "ext.h"

uint8_t cm_features;

/* The core's mode follows the features: any of them wants the calls, the
 * guards every free too. */
void cm_features_set(unsigned bits, bool on)
{
    if (on)
        __atomic_fetch_or(&cm_features, (uint8_t)bits, __ATOMIC_RELEASE);
    else
        __atomic_fetch_and(&cm_features, (uint8_t)~bits, __ATOMIC_RELEASE);
    unsigned now = cm_features_now();
    cm_ext_set_mode(CM_EXT_FREES, now & (CM_FEAT_GUARDS | CM_FEAT_PERTURB));
    cm_ext_set_mode(CM_EXT_CALLS, now != 0);
}

/* mallopt(M_PERTURB): glibc fills a block handed out (but for calloc) with
 * the byte's complement and one given back with the byte itself, so that
 * code relying on fresh or freed memory's contents shows. The guards fill
 * freed blocks with their own pattern instead. */
static int perturb_byte;

static void set_perturb(int value)
{
    __atomic_store_n(&perturb_byte, value, __ATOMIC_RELAXED);
    cm_features_set(CM_FEAT_PERTURB, value != 0);
}

static void perturb_alloc(void *p, size_t n)
{
    memset(p, (perturb_byte ^ 0xff) & 0xff, n);
}

/* A small block given back, as glibc does (huge blocks are unmapped or
 * cached untouched). Not one that is free already: the free that follows
 * must still see its free key and report the double free. */
static void perturb_free(void *p)
{
    struct cm_block_info info = cm_locate(p);
    if (!info.cls || (((struct cm_block *)p)->free_key == cm_hot.free_key &&
                      cm_block_is_free(cm_tcache_get(), info.segment, p, info.cls)))
        return;
    memset(p, perturb_byte & 0xff, cm_classes[info.cls].size);
}

static int owns_without_guards(const void *p)
{
    (void)p;
    return 1;
}

void cm_ext_attach(void)
{
    cm_ext.alloc = cm_ext_alloc;
    cm_ext.free = cm_ext_free;
    cm_ext.realloc = cm_ext_realloc;
    cm_ext.usable = cm_ext_usable;
    cm_ext.owns = owns_without_guards;
    cm_ext.set_perturb = set_perturb;
    cm_hooks_attach();
    cm_guard_attach();
}

static bool block_is_traced(struct cm_block_info info)
{
    return info.cls ? cm_hooks_arena_is_traced(info.segment->arena) : cm_huge_marked(info.segment);
}

static size_t usable(void *p, unsigned ext)
{
    size_t core = cm_core_usable(p);
    return ext & CM_FEAT_GUARDS ? cm_guard_usable(p, core) : core;
}

/* A block of n bytes for the program, guarded when the guards are on,
 * from the traced arena when it is to be reported. */
static void *alloc_block(size_t n, size_t align, bool traced, bool zero, unsigned ext)
{
    /* An untraced zero-size block is the core's (zero.c), with nothing to
     * guard: no access to it is allowed. A traced one must be found in the
     * traced arena when it is freed. */
    if (n == 0 && !traced && align <= CM_ZERO_MAX_ALIGN) {
        void *z = cm_zero_alloc(align);
        if (z)
            return z;
    }
    size_t request = ext & CM_FEAT_GUARDS ? cm_guard_request(n) : n;
    if (request == SIZE_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    if (!traced)
        cm_count_request(n);
    int saved_errno = errno;
    void *p = traced ? cm_traced_alloc(request, align) : cm_alloc_aligned(align, request);
    /* The address space hardened mode keeps reserved (freed huge blocks)
     * may be what a limit ran out of: it goes before the request fails. */
    if (!p && (ext & CM_FEAT_HARDENED) && cm_guard_drop_reservations()) {
        errno = saved_errno;
        p = traced ? cm_traced_alloc(request, align) : cm_alloc_aligned(align, request);
    }
    if (!p)
        return NULL;
    if (ext & CM_FEAT_GUARDS)
        p = cm_guard_after_alloc(p, n, zero);
    else if (zero)
        cm_zero_new_block(p, n);
    if ((ext & CM_FEAT_PERTURB) && !zero)
        perturb_alloc(p, n);
    return p;
}

static inline void free_block(void *p, unsigned ext)
{
    if ((ext & CM_FEAT_GUARDS) && !cm_guard_before_free(p))
        return;
    if ((ext & (CM_FEAT_GUARDS | CM_FEAT_PERTURB)) == CM_FEAT_PERTURB && p)
        perturb_free(p);
    cm_core_free(p);
}

static void report(enum cmalloc_event_type type, enum cmalloc_function fn, void *p,
                   size_t size, size_t usable_size, size_t align, size_t weight)
{
    struct cmalloc_event ev = {
        .type = type,
        .function = fn,
        .ptr = p,
        .size = size,
        .usable = usable_size,
        .alignment = align,
        .weight = weight,
    };
    cm_hooks_report(&ev);
}

static CM_NOINLINE void *alloc_reported(size_t n, size_t align, enum cmalloc_function fn,
                                        unsigned ext)
{
    size_t weight = 0;
    bool traced = (ext & CM_FEAT_HOOKS) && cm_hooks_should_trace(n, &weight);
    void *p = alloc_block(n, align, traced, fn == CMALLOC_FN_CALLOC, ext);
    if (p && traced)
        report(CMALLOC_EVENT_ALLOC, fn, p, n, usable(p, ext), align, weight);
    return p;
}

/* With only sampling on, most calls are not sampled: they take the core
 * fast path after one countdown. */
void *cm_ext_alloc(size_t n, size_t align, enum cmalloc_function fn)
{
    unsigned ext = cm_features_now();
    if (cm_likely(ext == CM_FEAT_HOOKS && !align && fn != CMALLOC_FN_CALLOC) && cm_sample_skip(n))
        return cm_cache_alloc(n);
    return alloc_reported(n, align, fn, ext);
}

static CM_NOINLINE void free_reported(void *p, enum cmalloc_function fn, unsigned ext)
{
    if (!p)
        return;
    if (ext & CM_FEAT_HOOKS) {
        struct cm_block_info info = cm_locate_or_die("free", p);
        if (block_is_traced(info)) {
            size_t size = usable(p, ext);
            report(CMALLOC_EVENT_FREE, fn, p, size, size, 0, 0);
        }
    }
    free_block(p, ext);
}

/* A block of an ordinary heap segment was never reported. */
void cm_ext_free(void *p, enum cmalloc_function fn)
{
    unsigned ext = cm_features_now();
    unsigned tag = cm_segmap_tag((uintptr_t)p);
    if (cm_likely(!(ext & (CM_FEAT_GUARDS | CM_FEAT_PERTURB)) && cm_tag_is_heap(tag) &&
                  tag < CM_TAG_EXTRA_FIRST) ||
        cm_zero_holds(p)) {
        cm_core_free(p);
        return;
    }
    free_reported(p, fn, ext);
}

/* Moves a block by copying; the move is reported before the old block is
 * freed, while no other thread can be handed its address. */
static void *realloc_copy(void *p, size_t old_usable, size_t n, bool old_traced, bool traced,
                          unsigned ext)
{
    void *q = alloc_block(n, 0, traced, false, ext);
    if (!q)
        return NULL;
    memcpy(q, p, old_usable < n ? old_usable : n);
    size_t weight = traced ? cm_hooks_weight(n) : 0;
    if (old_traced && traced) {
        struct cmalloc_event ev = {
            .type = CMALLOC_EVENT_REALLOC,
            .function = CMALLOC_FN_REALLOC,
            .ptr = q,
            .size = n,
            .usable = usable(q, ext),
            .old_ptr = p,
            .old_usable = old_usable,
            .weight = weight,
        };
        cm_hooks_report(&ev);
    } else if (old_traced) {
        report(CMALLOC_EVENT_FREE, CMALLOC_FN_REALLOC, p, old_usable, old_usable, 0, 0);
    } else if (traced) {
        report(CMALLOC_EVENT_ALLOC, CMALLOC_FN_REALLOC, q, n, usable(q, ext), 0, weight);
    }
    free_block(p, ext);
    return q;
}

/* A reported block stays reported, and is resized by the core where it
 * can be: a small block within its class, a huge one in its mapping or
 * moved by mremap. Only a change of usable size is worth an event, so a
 * buffer grown a little at a time costs an event per (geometric) growth of
 * its mapping, not per call. A huge block that may move has its free
 * reported before and its new place after, so no event of another thread
 * about the old address can come in between. */
static void *realloc_traced(void *p, struct cm_block_info info, size_t old_usable, size_t n,
                            unsigned ext)
{
    bool stays_huge = cm_maps_own(n);
    if (info.cls) {
        if (n <= CM_MAX_CLASS_SIZE && cm_size_class(n) == info.cls)
            return p;
        return realloc_copy(p, old_usable, n, true, true, ext);
    }
    if (!stays_huge)
        return realloc_copy(p, old_usable, n, true, true, ext);
    if (n <= old_usable) {
        void *q = cm_core_realloc(p, n);
        size_t now = usable(q, ext);
        if (now != old_usable) {
            struct cmalloc_event ev = {
                .type = CMALLOC_EVENT_REALLOC,
                .function = CMALLOC_FN_REALLOC,
                .ptr = q,
                .size = n,
                .usable = now,
                .old_ptr = p,
                .old_usable = old_usable,
                .weight = cm_hooks_weight(n),
            };
            cm_hooks_report(&ev);
        }
        return q;
    }
    report(CMALLOC_EVENT_FREE, CMALLOC_FN_REALLOC, p, old_usable, old_usable, 0, 0);
    void *q = cm_core_realloc(p, n);
    cm_huge_set_mark(cm_locate(q ? q : p).segment, q != NULL);
    if (q)
        report(CMALLOC_EVENT_ALLOC, CMALLOC_FN_REALLOC, q, n, usable(q, ext), 0, cm_hooks_weight(n));
    return q;
}

static void *realloc_alloc(size_t n)
{
    return cm_ext_alloc(n, 0, CMALLOC_FN_REALLOC);
}

void *cm_ext_realloc(void *p, size_t n)
{
    if (!p)
        return cm_ext_alloc(n, 0, CMALLOC_FN_REALLOC);
    if (n == 0) {
        cm_ext_free(p, CMALLOC_FN_REALLOC);
        return NULL;
    }
    if (cm_zero_holds(p))
        return cm_zero_realloc(p, n, realloc_alloc);
    unsigned ext = cm_features_now();
    struct cm_block_info info = cm_locate_or_die("realloc", p);
    if (n > (size_t)PTRDIFF_MAX) {
        errno = ENOMEM;
        return NULL;
    }
    bool hooks = ext & CM_FEAT_HOOKS;
    size_t old_usable = usable(p, ext);
    if (hooks && block_is_traced(info) && !(ext & CM_FEAT_GUARDS))
        return realloc_traced(p, info, old_usable, n, ext);
    bool old_traced = hooks && block_is_traced(info);
    /* Only the bytes a realloc adds count towards the next sample. */
    size_t weight, growth = n > old_usable ? n - old_usable : 0;
    bool traced = hooks && growth && cm_hooks_should_trace(growth, &weight);
    if (!(ext & CM_FEAT_GUARDS) && !old_traced && !traced)
        return cm_core_realloc(p, n);
    if (!old_traced && !traced) {
        void *q = cm_guard_realloc(p, n);
        if (q)
            return q;
    }
    return realloc_copy(p, old_usable, n, old_traced, traced, ext);
}

size_t cm_ext_usable(void *p)
{
    if (cm_zero_holds(p))
        return cm_core_usable(p);
    return usable(p, cm_features_now());
}
