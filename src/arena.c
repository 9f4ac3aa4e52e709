/* Arenas and their bins.
 *
 * There is at most one arena per online CPU (or M_ARENA_MAX). A new thread
 * gets an arena that has no thread yet, a new arena while the limit allows,
 * and otherwise the arena with the fewest threads. Arena 0 is static, so the
 * first allocation needs no mmap for the arena itself.
 *
 * A bin hands blocks out of its class's runs: first the blocks freed back to
 * the front run, then never-used blocks carved from its end, so a new run
 * costs nothing until its pages are used. Blocks come back to the run they
 * were carved from; an empty run goes back to the page allocator unless it
 * is the only run its bin has left and holds more than one block (keeping
 * a one-block run would only keep the block away from other sizes). */
#include <string.h>

#include "debug.h"
#include "internal.h"

struct cm_arena *cm_arenas[CM_MAX_ARENAS];
unsigned cm_narenas;
static struct cm_arena arena0;
struct cm_arena *cm_extra_arenas[CM_MAX_EXTRA_ARENAS];
const char *cm_extra_arena_names[CM_MAX_EXTRA_ARENAS];
unsigned cm_nextra_arenas;

static void arena_init(struct cm_arena *a, unsigned index)
{
    a->index = index;
    a->tag = (uint8_t)(index + 1);
    cm_arenas[index] = a;
    __atomic_store_n(&cm_narenas, index + 1, __ATOMIC_RELEASE);
}

void cm_arena_boot(void)
{
    arena_init(&arena0, 0);
}

/* A feature's arena: a tag from the features' range, which no thread
 * holds, and an index after the core's for the statistics. Registered
 * during initialisation, before any thread uses it. */
unsigned cm_arena_register_extra(struct cm_arena *a, const char *name)
{
    unsigned i = cm_nextra_arenas;
    if (i == CM_MAX_EXTRA_ARENAS)
        cm_fatal("too many feature arenas");
    a->index = CM_MAX_ARENAS + i;
    a->tag = (uint8_t)(CM_TAG_EXTRA_FIRST + i);
    cm_extra_arenas[i] = a;
    cm_extra_arena_names[i] = name;
    cm_nextra_arenas = i + 1;
    return i;
}

void cm_ext_set_mode(unsigned bits, bool on)
{
    uint8_t was;
    if (on)
        was = __atomic_fetch_or(&cm_hot.ext, (uint8_t)bits, __ATOMIC_RELEASE);
    else
        was = __atomic_fetch_and(&cm_hot.ext, (uint8_t)~bits, __ATOMIC_RELEASE);
    if (on && (bits & CM_EXT_CALLS))
        cm_tcache_countdown_all(0);
    if ((bits & CM_EXT_FREES) && !(was & CM_EXT_FREES) == on)
        cm_tcache_retag_all();
}

struct cm_ext cm_ext;

static unsigned arena_limit(void)
{
    unsigned limit = cm_opt.arena_max;
    return limit == 0 || limit > CM_MAX_ARENAS ? CM_MAX_ARENAS : limit;
}

static struct cm_arena *arena_map(void)
{
    size_t size = (sizeof(struct cm_arena) + CM_PAGE_SIZE - 1) & ~(CM_PAGE_SIZE - 1);
    return cm_os_map(size);
}

static struct cm_arena *arena_create(void)
{
    struct cm_arena *a = arena_map();
    if (a)
        arena_init(a, cm_narenas);
    return a;
}

/* In a forked child: an arena some thread held locked at the fork may be
 * halfway through an update. A fresh arena takes its index and tag, and the
 * old one stays as it is for the update to finish on, if this thread was
 * the one making it (fork.c). Returns the arena now in old's place. */
static struct cm_arena *replace_if_locked(struct cm_arena *old)
{
    if (!cm_lock_abandon_if_held(&old->lock))
        return old;
    struct cm_arena *fresh = arena_map();
    if (!fresh)
        cm_fatal("fork: no memory for a fresh arena in the child");
    fresh->index = old->index;
    fresh->tag = old->tag;
    old->abandoned = 1;
    return fresh;
}

/* Locks a, or, if a forked child abandoned it (while this thread waited),
 * the arena in its place. Returns the arena it locked. */
struct cm_arena *cm_arena_lock_current(struct cm_arena *a)
{
    while (cm_unlikely(!cm_lock_live(&a->lock)))
        a = a->index < CM_MAX_ARENAS ? cm_arenas[a->index]
                                     : cm_extra_arenas[a->index - CM_MAX_ARENAS];
    return a;
}

void cm_arena_fork_child(void)
{
    for (unsigned i = 0; i < cm_narenas; i++)
        cm_arenas[i] = replace_if_locked(cm_arenas[i]);
    for (unsigned i = 0; i < cm_nextra_arenas; i++)
        cm_extra_arenas[i] = replace_if_locked(cm_extra_arenas[i]);
}

/* Picks an arena for a new thread and counts the thread in it. */
struct cm_arena *cm_arena_choose(void)
{
    cm_lock(&cm_global_lock);
    struct cm_arena *best = cm_arenas[0];
    unsigned best_threads = __atomic_load_n(&best->nthreads, __ATOMIC_RELAXED);
    for (unsigned i = 1; i < cm_narenas && best_threads > 0; i++) {
        unsigned n = __atomic_load_n(&cm_arenas[i]->nthreads, __ATOMIC_RELAXED);
        if (n < best_threads) {
            best = cm_arenas[i];
            best_threads = n;
        }
    }
    if (best_threads > 0 && cm_narenas < arena_limit()) {
        struct cm_arena *fresh = arena_create();
        if (fresh)
            best = fresh;
    }
    __atomic_fetch_add(&best->nthreads, 1, __ATOMIC_RELAXED);
    cm_unlock(&cm_global_lock);
    return best;
}

static CM_COLD void corrupted_free_list(const struct cm_run *r)
{
    cm_fatal("corrupted free list in run %p (block size %u)", (const void *)cm_run_base(r),
             cm_classes[r->cls].size);
}

/* A link must point at a block boundary inside the run that holds it. */
static inline void check_link(const struct cm_run *r, const struct cm_class *c,
                              const struct cm_block *b)
{
    uintptr_t off = (uintptr_t)b - (uintptr_t)cm_run_base(r);
    if (cm_unlikely(off >= (uintptr_t)c->nblocks * c->size || off % c->size))
        corrupted_free_list(r);
}

static struct cm_run *new_run(struct cm_arena *a, unsigned cls)
{
    const struct cm_class *c = &cm_classes[cls];
    struct cm_run *r = cm_run_alloc(a, c->order);
    if (!r)
        return NULL;
    r->state = CM_RUN_BLOCKS;
    r->cls = (uint8_t)cls;
    r->free = NULL;
    r->carved = 0;
    r->nfree = c->nblocks;
    memset(&cm_run_segment(r)->page_cls[cm_run_first_page(r)], (int)cls, (size_t)1 << c->order);
    cm_list_insert(&a->bins[cls].runs, r, true);
    a->bins[cls].nruns++;
    return r;
}

static struct cm_block *run_take(struct cm_run *r, const struct cm_class *c)
{
    struct cm_block *b = r->free;
    if (b) {
        struct cm_block *next = cm_link_decode(b->next_enc);
        if (next)
            check_link(r, c, next);
        r->free = next;
    } else {
        b = (struct cm_block *)(cm_run_base(r) + (size_t)r->carved * c->size);
        r->carved++;
    }
    r->nfree--;
    return b;
}

/* Takes one block of class cls, with the arena lock held. */
static struct cm_block *bin_take(struct cm_arena *a, unsigned cls)
{
    struct cm_bin *bin = &a->bins[cls];
    struct cm_run *r = bin->runs;
    if (!r && !(r = new_run(a, cls)))
        return NULL;
    cm_assert(r->state == CM_RUN_BLOCKS && r->cls == cls && r->nfree > 0);
    struct cm_block *b = run_take(r, &cm_classes[cls]);
    cm_assert_internal(r->carved <= cm_classes[cls].nblocks);
    if (r->nfree == 0)
        cm_list_remove(&bin->runs, r);
    bin->nmalloc++;
    a->bytes_out += cm_classes[cls].size;
    if (a->bytes_out > a->bytes_out_peak)
        a->bytes_out_peak = a->bytes_out;
    return b;
}

/* Hands the blocks first..last (linked) of class cls to their arena from a
 * thread of another arena, without its lock. */
void cm_arena_push_remote(struct cm_arena *a, unsigned cls, struct cm_block *first,
                          struct cm_block *last)
{
    if (cm_unlikely(a->abandoned))
        return;
    struct cm_block *head = __atomic_load_n(&a->remote[cls], __ATOMIC_RELAXED);
    do
        last->next_enc = cm_link_encode(head);
    while (!__atomic_compare_exchange_n(&a->remote[cls], &head, first, true, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED));
    /* An arena without threads has nobody to refill from it, and so nobody
     * to take the blocks back. */
    if (__atomic_load_n(&a->nthreads, __ATOMIC_RELAXED) == 0 && cm_lock_live(&a->lock)) {
        cm_arena_collect_remote(a);
        cm_purge_tick(a);
        cm_unlock(&a->lock);
    }
}

static struct cm_block *take_remote(struct cm_arena *a, unsigned cls)
{
    if (!__atomic_load_n(&a->remote[cls], __ATOMIC_RELAXED))
        return NULL;
    return __atomic_exchange_n(&a->remote[cls], NULL, __ATOMIC_ACQUIRE);
}

static void free_chain_locked(struct cm_arena *a, struct cm_block *b, unsigned cls)
{
    while (b) {
        struct cm_block *next = cm_link_decode(b->next_enc);
        cm_arena_free_locked(a, cm_segment_of(b), b, cls);
        b = next;
    }
}

/* Puts the blocks pushed by other arenas' threads back into their runs,
 * with the lock held: before anything that must see the runs as they are
 * (double-free checks, trimming, statistics). */
void cm_arena_collect_remote(struct cm_arena *a)
{
    for (unsigned cls = 1; cls <= CM_NCLASSES; cls++)
        free_chain_locked(a, take_remote(a, cls), cls);
}

/* Lets a feature reorder the n blocks on top of a bin, which a refill has
 * just put there (at most the bin's capacity). */
static CM_NOINLINE void reorder_refill(struct cm_tcache *tc, unsigned cls, unsigned n)
{
    void *blocks[CM_TCACHE_MAX];
    cm_assert(n <= CM_TCACHE_MAX);
    for (unsigned i = 0; i < n; i++)
        blocks[i] = cm_tbin_pop(tc, cls);
    cm_ext.refill_order(blocks, n);
    for (unsigned i = n; i-- > 0;)
        cm_tbin_push(tc, cls, blocks[i]);
}

/* Refills a cache bin with up to want blocks: first those that other
 * threads gave back, which needs no lock unless there are more than the bin
 * holds, then from the runs. */
unsigned cm_arena_fill(struct cm_arena *a, unsigned cls, struct cm_tcache *tc, unsigned want)
{
    cm_background_maybe_start();
    unsigned got = 0;
    struct cm_block *b = take_remote(a, cls);
    for (; b && !cm_tbin_is_full(tc, cls); got++) {
        struct cm_block *next = cm_link_decode(b->next_enc);
        cm_tbin_push(tc, cls, b);
        b = next;
    }
    if (b || !got) {
        struct cm_arena *locked = cm_arena_lock_current(a);
        /* The rest of the chain belongs to an abandoned arena. */
        if (cm_unlikely(locked != a)) {
            a = locked;
            b = NULL;
        }
        free_chain_locked(a, b, cls);
        for (; got < want; got++) {
            struct cm_block *fresh = bin_take(a, cls);
            if (!fresh)
                break;
            cm_tbin_push(tc, cls, fresh);
        }
        cm_purge_tick(a);
        CM_DEBUG_CHECK_ARENA(a);
        cm_unlock(&a->lock);
    }
    if (cm_unlikely(cm_ext.refill_order != NULL) && got > 1)
        reorder_refill(tc, cls, got);
    return got;
}

void *cm_arena_alloc(struct cm_arena *a, unsigned cls)
{
    a = cm_arena_lock_current(a);
    struct cm_block *b = bin_take(a, cls);
    CM_DEBUG_CHECK_ARENA(a);
    cm_unlock(&a->lock);
    if (b)
        b->free_key = 0;
    return b;
}

static void release_run(struct cm_arena *a, struct cm_run *r)
{
    const struct cm_class *c = &cm_classes[r->cls];
    struct cm_bin *bin = &a->bins[r->cls];
    cm_list_remove(&bin->runs, r);
    bin->nruns--;
    if (cm_unlikely(cm_ext.run_released != NULL))
        cm_ext.run_released(r);
    memset(&cm_run_segment(r)->page_cls[cm_run_first_page(r)], 0, (size_t)1 << c->order);
    cm_run_release(a, r);
}

/* Whether the bin keeps r, which has just become empty, against
 * thrashing: a run of many blocks when no other run of the class has a
 * free block; one-block runs (all runs on such a bin's list are empty)
 * while the bin has at most its class's keep_empty of them. */
static bool keep_empty_run(const struct cm_bin *bin, const struct cm_run *r,
                           const struct cm_class *c)
{
    if (c->nblocks > 1)
        return r->next == r;
    return bin->nruns - (bin->nmalloc - bin->nfree) <= c->keep_empty;
}

void cm_arena_free_locked(struct cm_arena *a, struct cm_segment *s, void *p, unsigned cls)
{
    const struct cm_class *c = &cm_classes[cls];
    struct cm_bin *bin = &a->bins[cls];
    struct cm_run *r = cm_run_of_block(s, p, cls);
    struct cm_block *b = p;

    cm_assert(r->state == CM_RUN_BLOCKS && r->cls == cls && r->nfree < c->nblocks);
    cm_assert_internal(cm_is_block_start((uintptr_t)p, cls));
    b->next_enc = cm_link_encode(r->free);
    b->free_key = cm_hot.free_key;
    r->free = b;
    bin->nfree++;
    a->bytes_out -= c->size;
    if (++r->nfree == 1)
        cm_list_insert(&bin->runs, r, false);
    if (r->nfree == c->nblocks && !keep_empty_run(bin, r, c))
        release_run(a, r);
}

void cm_arena_free(struct cm_arena *a, struct cm_segment *s, void *p, unsigned cls)
{
    if (cm_unlikely(a->abandoned) || !cm_lock_live(&a->lock))
        return;
    cm_arena_free_locked(a, s, p, cls);
    cm_purge_tick(a);
    CM_DEBUG_CHECK_ARENA(a);
    cm_unlock(&a->lock);
}

/* Gives the one-block run holding p, a live block of class from, to class
 * to, which has one-block runs of the same order: realloc within a run's
 * pages without copying. Counted as a free of the old class and an
 * allocation of the new one. */
bool cm_arena_reclass(struct cm_segment *s, void *p, unsigned from, unsigned to)
{
    struct cm_arena *a = s->arena;
    struct cm_run *r = cm_run_of_block(s, p, from);
    if (cm_unlikely(a->abandoned) || !cm_lock_live(&a->lock))
        return false;
    r->cls = (uint8_t)to;
    memset(&s->page_cls[cm_run_first_page(r)], (int)to, (size_t)1 << r->order);
    a->bins[from].nruns--;
    a->bins[from].nfree++;
    a->bins[to].nruns++;
    a->bins[to].nmalloc++;
    a->bytes_out = a->bytes_out - cm_classes[from].size + cm_classes[to].size;
    if (a->bytes_out > a->bytes_out_peak)
        a->bytes_out_peak = a->bytes_out;
    cm_unlock(&a->lock);
    return true;
}

/* Whether p, which carries the free key, really is free in its run (or was
 * never handed out at all). Only called to confirm a suspected double free. */
bool cm_arena_block_is_free(struct cm_arena *a, struct cm_segment *s, void *p, unsigned cls)
{
    const struct cm_class *c = &cm_classes[cls];
    struct cm_run *r = cm_run_of_block(s, p, cls);
    bool found = false;
    if (cm_unlikely(a->abandoned) || !cm_lock_live(&a->lock))
        return false;
    cm_arena_collect_remote(a);
    if ((uintptr_t)p >= (uintptr_t)cm_run_base(r) + (uintptr_t)r->carved * c->size) {
        found = true;
    } else {
        for (struct cm_block *b = r->free; b && !found; b = cm_link_decode(b->next_enc)) {
            check_link(r, c, b);
            found = b == p;
        }
    }
    cm_unlock(&a->lock);
    return found;
}

/* The empty runs bins keep against thrashing, given back. */
static size_t release_empty_runs(struct cm_arena *a)
{
    size_t released = 0;
    for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
        struct cm_run *r = a->bins[cls].runs;
        if (!r)
            continue;
        /* Once round the circular list, which release_run unlinks from. */
        struct cm_run *last = r->prev;
        for (bool done = false; !done; ) {
            struct cm_run *next = r->next;
            done = r == last;
            if (r->nfree == cm_classes[cls].nblocks) {
                release_run(a, r);
                released++;
            }
            r = next;
        }
    }
    return released;
}

/* Returns every free page to the OS: whole free segments are released,
 * and the free runs of the others purged. Returns whether anything was. */
bool cm_arena_trim(struct cm_arena *a)
{
    a = cm_arena_lock_current(a);
    cm_arena_collect_remote(a);
    size_t released = release_empty_runs(a) + cm_arena_release_segments(a, 0);
    size_t purged = cm_arena_purge(a, 0);
    cm_unlock(&a->lock);
    return released + purged > 0;
}

/* A thread has left a, with the lock held: the memory it leaves free goes
 * back at once, since nothing may call again to purge it. Entirely free
 * segments are released (their headers are resident too). With no thread
 * left, the dirty pages go as well; otherwise those beyond what the
 * remaining threads have in use, which a program whose other threads keep
 * working is unlikely to need all at once. */
void cm_arena_thread_left(struct cm_arena *a)
{
    cm_arena_collect_remote(a);
    bool alone = __atomic_load_n(&a->nthreads, __ATOMIC_RELAXED) == 0;
    if (alone)
        release_empty_runs(a);
    cm_arena_release_segments(a, CM_EXIT_KEEP_SEGMENTS);
    size_t keep = alone ? 0 : a->bytes_out >> CM_PAGE_SHIFT;
    cm_arena_purge(a, keep > CM_EXIT_KEEP_PAGES ? keep : CM_EXIT_KEEP_PAGES);
    a->released_pages = 0;
    a->over_cap_ms = 0;
    a->over_cap_ticks = 0;
}

bool cm_trim_all(void)
{
    bool any = cm_huge_cache_flush();
    for (unsigned i = 0, n = __atomic_load_n(&cm_narenas, __ATOMIC_ACQUIRE); i < n; i++)
        any |= cm_arena_trim(cm_arenas[i]);
    for (unsigned i = 0; i < cm_nextra_arenas; i++)
        any |= cm_arena_trim(cm_extra_arenas[i]);
    return any;
}
