/* The thread cache: each thread keeps a few free blocks per size class (a
 * bin, two lists: see types.h), so the common malloc and free (the inline fast paths in
 * fastpath.h) touch only this thread's state.
 *
 * The slow paths here refill an empty bin from the thread's arena, half a
 * bin at a time (a bin's capacity starts small and doubles each time it runs
 * dry, up to its class's), and flush half of a full bin back to the arena.
 *
 * Only blocks of the thread's own arena enter its bins. A block freed by a
 * thread of another arena goes on that thread's remote list instead and
 * returns to its arena in batches, without taking its lock: handing it
 * out again in the freeing thread would put that thread's data next to
 * blocks the allocating thread still uses, in the same cache lines (passive
 * false sharing), and would leave the memory stranded in the arena of
 * whichever thread happened to free it.
 *
 * A thread's cache goes back to the arenas when the thread exits (a pthread
 * key destructor). After that the thread is DEAD: every bin is disabled and
 * whatever it still allocates or frees goes straight to an arena, so frees
 * that come after the destructor (from other libraries' destructors) are
 * still correct. */
#include <errno.h>

#include "debug.h"
#include "internal.h"

/* Every thread starts with tag CM_TAG_NONE and an empty countdown, so its
 * first malloc or free takes the slow path, which attaches it. */
__thread struct cm_tcache cm_tls __attribute__((tls_model("initial-exec"))) = {
    .tag = CM_TAG_NONE,
};

/* How many bytes malloc hands out between two looks at the slow path when
 * no feature asks for a shorter countdown: rare enough to cost nothing,
 * often enough that a feature switched on while a thread runs (a hook
 * installed by another thread) reaches it soon. */
#define CM_COUNTDOWN_PERIOD ((uint64_t)1 << 20)

static void countdown_arm(struct cm_tcache *tc, uint64_t bytes)
{
    tc->requested_base += bytes - tc->countdown;
    tc->countdown = bytes;
}

uint64_t cm_tcache_requested(const struct cm_tcache *tc)
{
    return __atomic_load_n(&tc->requested_base, __ATOMIC_RELAXED) -
           __atomic_load_n(&tc->countdown, __ATOMIC_RELAXED);
}

/* Ends every thread's countdown, so that a feature switched on now sees
 * their next malloc: at once on this thread, and on others unless one
 * happens to be in the middle of its own subtract, when it sees it at its
 * next period instead. Each thread's counted bytes stay as they were. */
void cm_tcache_countdown_all(uint64_t bytes)
{
    countdown_arm(&cm_tls, bytes);
    for (unsigned i = 0, n = __atomic_load_n(&cm_narenas, __ATOMIC_ACQUIRE); i < n; i++) {
        struct cm_arena *a = cm_arena_lock_current(cm_arenas[i]);
        for (struct cm_tcache *tc = a->threads; tc; tc = tc->next) {
            if (tc == &cm_tls)
                continue;
            uint64_t left = __atomic_exchange_n(&tc->countdown, bytes, __ATOMIC_RELAXED);
            __atomic_fetch_add(&tc->requested_base, bytes - left, __ATOMIC_RELAXED);
        }
        cm_unlock(&a->lock);
    }
}

static uint8_t fast_free_tag(const struct cm_arena *a);

/* CM_EXT_FREES came or went: every attached thread's tag follows, so that
 * its frees take the slow path to the features, or stop doing so. A thread
 * in the middle of a free may still use the old tag once. */
void cm_tcache_retag_all(void)
{
    for (unsigned i = 0, n = __atomic_load_n(&cm_narenas, __ATOMIC_ACQUIRE); i < n; i++) {
        struct cm_arena *a = cm_arena_lock_current(cm_arenas[i]);
        for (struct cm_tcache *tc = a->threads; tc; tc = tc->next)
            __atomic_store_n(&tc->tag, fast_free_tag(a), __ATOMIC_RELAXED);
        cm_unlock(&a->lock);
    }
}

/* Lets a feature that samples allocations set this thread's countdown to
 * the bytes until its next sample. */
void cm_countdown_arm(uint64_t bytes)
{
    countdown_arm(&cm_tls, bytes);
}

/* For allocations the features make without the countdown. */
void cm_count_request(size_t n)
{
    cm_tls.requested_base += n;
}

/* With CM_EXT_FREES every free must reach the features: threads then hold
 * no tag. */
static uint8_t fast_free_tag(const struct cm_arena *a)
{
    return cm_ext_mode() & CM_EXT_FREES ? CM_TAG_NONE : a->tag;
}

/* Sets a bin's capacity, keeping the blocks it holds (cap >= their count). */
void cm_tcache_set_capacity(struct cm_tcache *tc, unsigned cls, uint32_t cap)
{
    uint32_t count = cm_tbin_count(tc, cls);
    cm_assert(count <= cap && cap <= CM_TCACHE_MAX);
    tc->cap[cls] = (uint16_t)cap;
    tc->room[cls] = (uint16_t)(cap - count);
}

static void tcache_attach(struct cm_tcache *tc)
{
    cm_ensure_init();
    struct cm_arena *a = cm_arena_choose();
    /* A forked child may have replaced it while this thread, interrupted,
     * was choosing (fork.c). */
    while (cm_unlikely(a->abandoned))
        a = cm_arena_choose();
    a = cm_arena_lock_current(a);
    tc->arena = a;
    tc->prev = NULL;
    tc->next = a->threads;
    if (a->threads)
        a->threads->prev = tc;
    a->threads = tc;
    cm_unlock(&a->lock);
    tc->free_key = cm_hot.free_key;
    for (unsigned cls = 1; cls <= CM_NCLASSES; cls++)
        cm_tcache_set_capacity(tc, cls, cm_classes[cls].tcache_start);
    tc->tag = fast_free_tag(a);
    tc->state = CM_TC_ACTIVE;
    /* May allocate (glibc grows its key table with calloc), which is fine
     * now that this cache works. */
    cm_tcache_register_exit(tc);
}

struct cm_tcache *cm_tcache_get(void)
{
    struct cm_tcache *tc = &cm_tls;
    if (cm_unlikely(tc->state == CM_TC_NEW))
        tcache_attach(tc);
    return tc;
}

/* Returns n blocks from the top of a bin to their arenas, holding each
 * arena's lock across consecutive blocks that it owns. */
static void tcache_flush(struct cm_tcache *tc, unsigned cls, unsigned n)
{
    struct cm_arena *locked = NULL;
    while (n-- && !cm_tbin_is_empty(tc, cls)) {
        struct cm_block *b = cm_tbin_pop(tc, cls);
        struct cm_segment *s = cm_segment_of(b);
        if (cm_unlikely(s->arena->abandoned))
            continue;
        if (s->arena != locked) {
            if (locked) {
                cm_purge_tick(locked);
                cm_unlock(&locked->lock);
            }
            locked = s->arena;
            if (cm_unlikely(!cm_lock_live(&locked->lock))) {
                locked = NULL;
                continue;
            }
        }
        cm_arena_free_locked(locked, s, b, cls);
    }
    if (locked) {
        cm_purge_tick(locked);
        cm_unlock(&locked->lock);
    }
}

/* The most blocks a free returns to the arena when its bin is full. Each
 * costs a cache miss or two under a large working set (the list is walked
 * through the blocks, which may have gone cold), about 200 ns: half of a
 * full bin, 65 blocks, made such a free cost 13-16 us, the latency
 * workload's 99.9th percentile; 32 keep it near 10 us. 16 would keep it
 * near 6 us, but a bin then stays too full for its capacity to settle:
 * 512-byte blocks in batches of 32 took 152 instructions per pair instead
 * of 62. */
#define CM_FLUSH_MAX 32

/* A batch is flushed at whichever limit comes first: enough blocks that the
 * atomic push onto a line other threads write is rare, few enough bytes
 * that memory does not pile up in a thread that frees what others
 * allocate. */
#define CM_REMOTE_MAX_BLOCKS 256
#define CM_REMOTE_MAX_BYTES (64 * 1024)

/* Hands the remote list to the arenas without their locks: one atomic push
 * per arena and class (cm_arena_push_remote), so this thread never waits
 * for an arena that its own threads keep busy. */
static void remote_flush(struct cm_tcache *tc)
{
    struct cm_block *pending = tc->remote;
    tc->remote = NULL;
    tc->remote_blocks = tc->remote_bytes = 0;
    __builtin_memset(tc->remote_count, 0, sizeof tc->remote_count);
    while (pending) {
        struct cm_arena *a = cm_segment_of(pending)->arena;
        struct cm_block *first[CM_NCLASSES + 1] = {0}, *last[CM_NCLASSES + 1];
        struct cm_block *others = NULL;
        while (pending) {
            struct cm_block *b = pending;
            struct cm_segment *s = cm_segment_of(b);
            pending = cm_link_decode(b->next_enc);
            if (s->arena != a) {
                b->next_enc = cm_link_encode(others);
                others = b;
                continue;
            }
            unsigned cls = s->page_cls[cm_page_index(b)];
            if (!first[cls])
                last[cls] = b;
            b->next_enc = cm_link_encode(first[cls]);
            first[cls] = b;
        }
        for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
            if (first[cls])
                cm_arena_push_remote(a, cls, first[cls], last[cls]);
        }
        pending = others;
    }
}

static void remote_push(struct cm_tcache *tc, struct cm_block *b, unsigned cls)
{
    b->next_enc = cm_link_encode(tc->remote);
    b->free_key = tc->free_key;
    tc->remote = b;
    tc->remote_count[cls]++;
    tc->remote_bytes += cm_classes[cls].size;
    if (++tc->remote_blocks >= CM_REMOTE_MAX_BLOCKS || tc->remote_bytes >= CM_REMOTE_MAX_BYTES)
        remote_flush(tc);
}

void cm_tcache_flush_all(struct cm_tcache *tc)
{
    remote_flush(tc);
    for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
        tcache_flush(tc, cls, cm_tbin_count(tc, cls));
    }
}

/* malloc's countdown ran out. While features see the calls, this one goes
 * to them with the countdown as it was before it: they count the request,
 * and set the countdown if they want to see fewer calls (cm_countdown_arm:
 * a sampler's bytes until the next sample), or leave it at what it was, 0
 * for every call. Otherwise the statistics keep what it counted and it
 * starts again. */
CM_NOINLINE void *cm_alloc_crossed(size_t n)
{
    /* Undone before initialisation may set the countdown. */
    cm_tls.countdown += n;
    struct cm_tcache *tc = cm_tcache_get();
    if (cm_unlikely(cm_ext_mode() & CM_EXT_CALLS))
        return cm_ext.alloc(n, 0, CMALLOC_FN_MALLOC);
    countdown_arm(tc, CM_COUNTDOWN_PERIOD);
    tc->requested_base += n;
    return cm_cache_alloc(n);
}

CM_NOINLINE void *cm_alloc_slow(size_t n)
{
    if (n == 0) {
        void *z = cm_zero_alloc(0);
        if (z)
            return z;
    }
    if (cm_maps_own(n)) {
        cm_ensure_init();
        return cm_huge_alloc(n, 0);
    }
    struct cm_tcache *tc = cm_tcache_get();
    unsigned cls = cm_size_class(n);
    void *p;
    if (cm_tbin_enabled(tc, cls)) {
        if (cm_tbin_is_empty(tc, cls)) {
            /* A bin that keeps running dry earns a larger capacity, up to
             * its class's; bins a thread barely uses stay small. */
            uint32_t cap = cm_classes[cls].tcache_max, now = cm_tbin_capacity(tc, cls);
            if (now < cap)
                cm_tcache_set_capacity(tc, cls, now * 2 < cap ? now * 2 : cap);
            cm_arena_fill(tc->arena, cls, tc, (cm_tbin_capacity(tc, cls) + 1) / 2);
        }
        p = cm_tbin_is_empty(tc, cls) ? NULL : cm_tbin_pop(tc, cls);
    } else {
        p = cm_arena_alloc(tc->arena, cls);
    }
    if (!p)
        errno = ENOMEM;
    return p;
}

static CM_COLD void double_free(const void *p, unsigned cls)
{
    cm_fatal("free(): double free of %p (block size %u)", p, cm_classes[cls].size);
}

/* Whether p, a block start that carries the free key, is free: in this
 * thread's cache or remote list, or in its run. The key alone may be a value
 * the program happened to store there. Blocks in other threads' caches are
 * not seen. */
static bool chain_holds(const struct cm_block *head, uint32_t count, const void *p)
{
    uint32_t seen = 0;
    for (const struct cm_block *b = head; b && seen < count;
         b = cm_link_decode(b->next_enc), seen++) {
        if (b == p)
            return true;
    }
    return false;
}

bool cm_block_is_free(struct cm_tcache *tc, struct cm_segment *s, void *p, unsigned cls)
{
    if (tc->state == CM_TC_ACTIVE &&
        (chain_holds(tc->head[cls], cm_tbin_count(tc, cls), p) ||
         chain_holds(tc->freed[cls], cm_tbin_count(tc, cls), p) ||
         chain_holds(tc->remote, tc->remote_blocks, p)))
        return true;
    return cm_arena_block_is_free(s->arena, s, p, cls);
}

/* free's slow path: the features first when they must see every free or
 * this block is one of theirs, then the checked core free. */
CM_NOINLINE void cm_free_slow(void *p)
{
    if (cm_unlikely(cm_ext_mode() & CM_EXT_CALLS)) {
        int saved_errno = errno;
        cm_ext.free(p, CMALLOC_FN_FREE);
        errno = saved_errno;
        return;
    }
    cm_core_free(p);
}

static CM_COLD _Noreturn void wrong_size(const void *p, size_t size, size_t usable)
{
    cm_fatal("free_sized(): size %zu does not match the block at %p (block size %zu)", size, p,
             usable);
}

/* Whether size (with align, when not 0) could have been asked of malloc or
 * aligned_alloc for the block of class cls, or the huge block s. */
static bool size_fits(struct cm_block_info info, size_t size, size_t align)
{
    if (!info.cls)
        return size <= cm_huge_usable(info.segment);
    if (size > CM_MAX_CLASS_SIZE)
        return false;
    unsigned want = align > CM_ALIGNMENT ? cm_aligned_class(align, size) : cm_size_class(size);
    return want == info.cls;
}

/* free_sized and free_aligned_sized: a size that does not fit the block
 * is a bug of the caller's that would otherwise go unseen. While the
 * features see the calls, their blocks carry room the size does not
 * count, and they check blocks themselves. */
CM_NOINLINE void cm_free_sized_slow(void *p, size_t size, size_t align)
{
    if (!p)
        return;
    if (cm_unlikely(cm_ext_mode() & CM_EXT_CALLS)) {
        cm_free_slow(p);
        return;
    }
    struct cm_block_info info = cm_locate(p);
    if (info.segment && !size_fits(info, size, align))
        wrong_size(p, size, info.cls ? cm_classes[info.cls].size : cm_huge_usable(info.segment));
    if (!info.segment && size && cm_zero_holds(p))
        wrong_size(p, size, 0);
    cm_core_free(p);
}

void cm_core_free(void *p)
{
    if (!p)
        return;
    int saved_errno = errno;
    struct cm_block_info info = cm_locate(p);
    struct cm_segment *s = info.segment;
    unsigned cls = info.cls;
    if (!s) {
        if (!cm_zero_holds(p))
            cm_invalid_pointer("free", p);
        cm_zero_free("free", p);
        errno = saved_errno;
        return;
    }
    if (!cls) {
        cm_huge_free(s);
        errno = saved_errno;
        return;
    }
    struct cm_tcache *tc = cm_tcache_get();
    if (((struct cm_block *)p)->free_key == cm_hot.free_key && cm_block_is_free(tc, s, p, cls))
        double_free(p, cls);
    /* A block of a feature's arena goes straight back to it: from a cache
     * it could be handed out again as an ordinary one. */
    if (!cm_tbin_enabled(tc, cls) || s->arena->tag >= CM_TAG_EXTRA_FIRST) {
        cm_arena_free(s->arena, s, p, cls);
    } else if (s->arena != tc->arena) {
        remote_push(tc, p, cls);
    } else {
        if (cm_tbin_is_full(tc, cls)) {
            unsigned n = cm_tbin_capacity(tc, cls) / 2 + 1;
            tcache_flush(tc, cls, n < CM_FLUSH_MAX ? n : CM_FLUSH_MAX);
        }
        cm_tbin_push(tc, cls, p);
    }
    errno = saved_errno;
}

void cm_tcache_thread_exit(void *arg)
{
    struct cm_tcache *tc = arg;
    if (tc->state != CM_TC_ACTIVE)
        return;
    cm_tcache_flush_all(tc);
    for (unsigned cls = 1; cls <= CM_NCLASSES; cls++)
        cm_tcache_set_capacity(tc, cls, 0);
    tc->tag = CM_TAG_NONE;
    struct cm_arena *a = cm_arena_lock_current(tc->arena);
    if (tc->prev)
        tc->prev->next = tc->next;
    else
        a->threads = tc->next;
    if (tc->next)
        tc->next->prev = tc->prev;
    tc->next = tc->prev = NULL;
    cm_stats_thread_exit(a, tc);
    __atomic_fetch_sub(&a->nthreads, 1, __ATOMIC_RELAXED);
    cm_arena_thread_left(a);
    cm_unlock(&a->lock);
    tc->state = CM_TC_DEAD;
}

/* In a forked child only this thread exists: the caches of the others stay
 * where they were (their blocks are lost to the child, as with glibc's
 * tcache), but they must no longer count as threads of their arenas. */
void cm_tcache_after_fork_child(void)
{
    if (cm_tls.state == CM_TC_ACTIVE && cm_tls.arena->abandoned)
        cm_tls.arena = cm_arenas[cm_tls.arena->index];
    for (unsigned i = 0; i < cm_narenas; i++) {
        struct cm_arena *a = cm_arenas[i];
        bool mine = cm_tls.state == CM_TC_ACTIVE && cm_tls.arena == a;
        a->threads = mine ? &cm_tls : NULL;
        a->nthreads = mine ? 1 : 0;
    }
    if (cm_tls.state == CM_TC_ACTIVE)
        cm_tls.next = cm_tls.prev = NULL;
}
