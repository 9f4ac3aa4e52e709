/* Huge blocks: requests above the largest size class or the mmap threshold
 * get a mapping of their own.
 *
 * A freed mapping waits a while in a small cache before it is unmapped:
 * programs that allocate and free big buffers over and over (a decoder's
 * frame, a zero-filled scratch area) then reuse pages that are already
 * faulted in, instead of paying an mmap, a munmap and a page fault per page
 * each time. The cache holds at most CM_HUGE_CACHE_SLOTS mappings and the
 * trim threshold's worth of bytes in all (the same allowance an arena has
 * for dirty free pages), and a mapping leaves it after the purge delay
 * (one expired mapping is unmapped whenever a huge block comes or goes, so
 * no call unmaps a pile of them; all expired ones by the background purge
 * thread when it runs), on malloc_trim, or when an mmap fails.
 *
 * The mapping is a huge segment: 4 MiB aligned, with a one-page header
 * (more when the block needs a larger alignment) before the block, so free()
 * finds it by masking like any other block. Growing one moves its pages with
 * mremap instead of copying them.
 *
 * An alignment of 4 MiB or more would put the block itself on the granule
 * boundary where the header belongs. Such blocks keep their header one
 * alignment unit before the block, leave the block's granule unmarked in the
 * segment map, and are found through a short registry instead; they are rare
 * enough that a locked list is the right structure.
 *
 * When a feature asks for it (hardened mode), a huge block ends at a
 * PROT_NONE tail, the last cm_ext.huge_tail bytes of its mapping, as close
 * to it as the block's alignment allows, so an access past its end faults
 * at once. Such mappings are unmapped when freed rather than cached (a use
 * after free faults too, and a cached one would take its tail into the
 * middle of the next block). A resize lifts the protection (mremap wants
 * one mapping, not two) and puts it back at the new end; the end of a
 * resized block may then be up to a page (or the growth reserve) away from
 * it. */
#include <errno.h>
#include <string.h>

#include "internal.h"

/* Blocks aligned to 4 MiB or more, under registry_lock. Each change is one
 * store of a link (release), so the list is whole between any two: a
 * forked child that finds the lock held just resets it. */
static struct cm_segment *aligned_registry;
static cm_lock_t registry_lock;

#define CM_HUGE_CACHE_SLOTS 8

/* Freed mappings kept for reuse, oldest first, under the cache's lock. A
 * forked child that finds it held takes an empty cache instead, leaving
 * the old one to the update under way, if this thread was making it. */
struct huge_cache {
    cm_lock_t lock;  /* first: see cm_lock_current */
    unsigned len;
    size_t bytes;
    struct cm_segment *slot[CM_HUGE_CACHE_SLOTS];
};

static struct huge_cache cache_first;
static cm_lock_t *cache_now = &cache_first.lock;

static struct huge_cache *cache_lock(void)
{
    return (struct huge_cache *)cm_lock_current(&cache_now);
}

void cm_huge_fork_child(void)
{
    cm_lock_reset(&registry_lock);
    cm_fork_replace_if_held(&cache_now, sizeof(struct huge_cache));
}

static size_t huge_count, huge_bytes, huge_max_count, huge_max_bytes;

static size_t page_round(size_t n)
{
    return (n + CM_PAGE_SIZE - 1) & ~(CM_PAGE_SIZE - 1);
}

static void account(ptrdiff_t count, ptrdiff_t bytes)
{
    size_t c = __atomic_add_fetch(&huge_count, (size_t)count, __ATOMIC_RELAXED);
    size_t b = __atomic_add_fetch(&huge_bytes, (size_t)bytes, __ATOMIC_RELAXED);
    size_t m = __atomic_load_n(&huge_max_count, __ATOMIC_RELAXED);
    while (c > m && !__atomic_compare_exchange_n(&huge_max_count, &m, c, true,
                                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    m = __atomic_load_n(&huge_max_bytes, __ATOMIC_RELAXED);
    while (b > m && !__atomic_compare_exchange_n(&huge_max_bytes, &m, b, true,
                                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

/* M_MMAP_MAX: the huge blocks there may be (none for 0 or less). */
bool cm_huge_may_map(void)
{
    return (long long)__atomic_load_n(&huge_count, __ATOMIC_RELAXED) < (long long)cm_opt.mmap_max;
}

void cm_huge_stats_get(struct cm_huge_stats *out)
{
    out->count = __atomic_load_n(&huge_count, __ATOMIC_RELAXED);
    out->bytes = __atomic_load_n(&huge_bytes, __ATOMIC_RELAXED);
    out->max_count = __atomic_load_n(&huge_max_count, __ATOMIC_RELAXED);
    out->max_bytes = __atomic_load_n(&huge_max_bytes, __ATOMIC_RELAXED);
}

/* A feature may want the end of every mapping inaccessible (seam.h). */
static size_t tail_size(void)
{
    return cm_ext.huge_tail;
}

/* Protects (or opens) the tail of s's mapping. Protecting it again after a
 * resize fails only when the kernel is out of mappings; the block is then
 * left with an open tail. */
static bool protect_tail(struct cm_segment *s, bool up)
{
    size_t tail = tail_size();
    return !tail || cm_os_protect((char *)s + s->map_size - tail, tail, !up);
}

static void cache_remove(struct huge_cache *c, unsigned i)
{
    __atomic_store_n(&c->bytes, c->bytes - c->slot[i]->map_size, __ATOMIC_RELAXED);
    c->len--;
    memmove(&c->slot[i], &c->slot[i + 1], (c->len - i) * sizeof c->slot[0]);
}

/* Moves the mappings that must leave the cache (up to max expired ones, or
 * all when everything is true) into out[], to be unmapped after the lock
 * is dropped. Returns how many. */
static unsigned cache_expire(struct huge_cache *c, struct cm_segment **out, bool everything,
                             unsigned max)
{
    uint64_t cutoff = cm_prim_now_ns() - (uint64_t)cm_opt.purge_delay_ms * 1000000u;
    unsigned n = 0;
    while (c->len && (everything || (n < max && c->slot[0]->cached_at <= cutoff))) {
        out[n++] = c->slot[0];
        cache_remove(c, 0);
    }
    return n;
}

static void unmap_all(struct cm_segment **list, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        cm_os_unmap(list[i], list[i]->map_size);
}

/* A cached mapping for map_size bytes, NULL when the cache is empty: the
 * smallest that fits, else the largest, grown. Either way the pages it
 * already has stay resident and need no fault; only an excess beyond the
 * trim threshold is cut off. The returned mapping is out of the segment map. */
static struct cm_segment *cache_take(size_t map_size)
{
    struct cm_segment *expired[CM_HUGE_CACHE_SLOTS], *s = NULL;
    unsigned best = CM_HUGE_CACHE_SLOTS, largest = CM_HUGE_CACHE_SLOTS;
    struct huge_cache *c = cache_lock();
    unsigned nexpired = cache_expire(c, expired, false, 1);
    for (unsigned i = 0; i < c->len; i++) {
        size_t size = c->slot[i]->map_size;
        if (size >= map_size && (best == CM_HUGE_CACHE_SLOTS || size < c->slot[best]->map_size))
            best = i;
        if (largest == CM_HUGE_CACHE_SLOTS || size > c->slot[largest]->map_size)
            largest = i;
    }
    unsigned pick = best < CM_HUGE_CACHE_SLOTS ? best : largest;
    if (pick < CM_HUGE_CACHE_SLOTS) {
        s = c->slot[pick];
        cache_remove(c, pick);
    }
    cm_unlock(&c->lock);
    unmap_all(expired, nexpired);
    if (!s)
        return NULL;
    if (s->map_size - map_size > cm_opt.trim_threshold && s->map_size > map_size) {
        if (cm_os_resize_in_place(s, s->map_size, map_size))
            s->map_size = map_size;
    } else if (s->map_size < map_size) {
        struct cm_segment *grown = s;
        if (!cm_os_resize_in_place(s, s->map_size, map_size))
            grown = cm_os_move_aligned(s, s->map_size, map_size, CM_SEG_SIZE);
        if (!grown) {
            cm_os_unmap(s, s->map_size);
            return NULL;
        }
        s = grown;
        s->map_size = map_size;
    }
    return s;
}

/* Keeps a freed mapping in the cache if it fits; false if it must go. */
static bool cache_put(struct cm_segment *s)
{
    struct cm_segment *expired[CM_HUGE_CACHE_SLOTS + 1];
    if (s->map_size > cm_opt.trim_threshold || cm_opt.purge_delay_ms == 0 || tail_size())
        return false;
    s->cached_at = cm_prim_now_ns();
    struct huge_cache *c = cache_lock();
    unsigned n = cache_expire(c, expired, false, 1);
    while (c->len && (c->len == CM_HUGE_CACHE_SLOTS ||
                      c->bytes + s->map_size > cm_opt.trim_threshold)) {
        expired[n++] = c->slot[0];
        cache_remove(c, 0);
    }
    c->slot[c->len++] = s;
    __atomic_store_n(&c->bytes, c->bytes + s->map_size, __ATOMIC_RELAXED);
    cm_unlock(&c->lock);
    unmap_all(expired, n);
    return true;
}

bool cm_huge_cache_flush(void)
{
    struct cm_segment *all[CM_HUGE_CACHE_SLOTS];
    struct huge_cache *c = cache_lock();
    unsigned n = cache_expire(c, all, true, 0);
    cm_unlock(&c->lock);
    unmap_all(all, n);
    return n > 0;
}

void cm_huge_cache_expire(void)
{
    struct cm_segment *expired[CM_HUGE_CACHE_SLOTS];
    struct huge_cache *c = cache_lock();
    unsigned n = cache_expire(c, expired, false, CM_HUGE_CACHE_SLOTS);
    cm_unlock(&c->lock);
    unmap_all(expired, n);
}

/* Whether p is the block of a mapping in the cache: freed already. */
bool cm_huge_is_cached(const void *p)
{
    bool found = false;
    struct huge_cache *c = cache_lock();
    for (unsigned i = 0; i < c->len && !found; i++)
        found = (const char *)c->slot[i] + c->slot[i]->block_offset == p;
    cm_unlock(&c->lock);
    return found;
}

size_t cm_huge_cached_bytes(void)
{
    const struct huge_cache *c = (const struct huge_cache *)__atomic_load_n(&cache_now,
                                                                          __ATOMIC_ACQUIRE);
    return __atomic_load_n(&c->bytes, __ATOMIC_RELAXED);
}

/* align is 0 or a power of two. */
void *cm_huge_alloc(size_t n, size_t align)
{
    size_t offset = align > CM_PAGE_SIZE ? align : CM_PAGE_SIZE;
    if (n > (size_t)PTRDIFF_MAX - offset - CM_SEG_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t tail = tail_size();
    size_t map_size = page_round(offset + n) + tail;
    size_t map_align = offset >= CM_SEG_SIZE ? offset : CM_SEG_SIZE;
    cm_background_maybe_start();
    struct cm_segment *s = offset == CM_PAGE_SIZE ? cache_take(map_size) : NULL;
    if (s) {
        s->zeroed = 0;
    } else {
        s = cm_os_map_aligned(map_size, map_align);
        /* Address space may be held by free heap segments (RLIMIT_AS). */
        if (!s && cm_trim_all())
            s = cm_os_map_aligned(map_size, map_align);
        if (!s) {
            errno = ENOMEM;
            return NULL;
        }
        s->zeroed = 1;
        s->map_size = map_size;
    }
    if (tail) {
        if (!protect_tail(s, true)) {
            cm_os_unmap(s, map_size);
            errno = ENOMEM;
            return NULL;
        }
        size_t unit = align > CM_ALIGNMENT ? align : CM_ALIGNMENT;
        offset = (map_size - tail - n) & ~(unit - 1);
    }
    s->kind = CM_SEG_HUGE;
    s->mark = 0;
    s->block_offset = offset;
    if (offset >= CM_SEG_SIZE) {
        cm_lock(&registry_lock);
        s->next = aligned_registry;
        __atomic_store_n(&aligned_registry, s, __ATOMIC_RELEASE);
        cm_unlock(&registry_lock);
    } else {
        cm_segmap_set(s, CM_TAG_HUGE);
    }
    account(1, (ptrdiff_t)s->map_size);
    return (char *)s + offset;
}

struct cm_segment *cm_huge_find_aligned(const void *p)
{
    struct cm_segment *found = NULL;
    if (!__atomic_load_n(&aligned_registry, __ATOMIC_RELAXED))
        return NULL;
    cm_lock(&registry_lock);
    for (struct cm_segment *s = aligned_registry; s && !found; s = s->next) {
        if ((const char *)s + s->block_offset == p)
            found = s;
    }
    cm_unlock(&registry_lock);
    return found;
}

void cm_huge_free(struct cm_segment *s)
{
    if (s->block_offset >= CM_SEG_SIZE) {
        cm_lock(&registry_lock);
        struct cm_segment **link = &aligned_registry;
        while (*link != s)
            link = &(*link)->next;
        __atomic_store_n(link, s->next, __ATOMIC_RELEASE);
        cm_unlock(&registry_lock);
    } else {
        cm_segmap_clear(s);
    }
    account(-1, -(ptrdiff_t)s->map_size);
    if (s->block_offset != CM_PAGE_SIZE || !cache_put(s))
        cm_os_unmap(s, s->map_size);
}

size_t cm_huge_usable(const struct cm_segment *s)
{
    return s->map_size - tail_size() - s->block_offset;
}

/* Resizes a huge block that stays huge. Returns NULL (with errno ENOMEM)
 * when it cannot, leaving the block as it was. */
void *cm_huge_realloc(struct cm_segment *s, size_t n)
{
    if (n > (size_t)PTRDIFF_MAX - s->block_offset - CM_SEG_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t old_size = s->map_size;
    size_t new_size = page_round(s->block_offset + n) + tail_size();
    /* A smaller size keeps the mapping unless the excess is beyond what
     * the trim threshold lets us keep for reuse (as a mapping taken from the
     * cache does), so a size that goes up and down costs nothing. */
    if (new_size <= old_size && old_size - new_size <= cm_opt.trim_threshold)
        return (char *)s + s->block_offset;
    /* Grow by at least a quarter: a buffer that grows in small steps (a
     * vector's push_back) then costs a logarithmic number of mremaps, and
     * the reserve is address space, not memory, until it is written. */
    if (new_size > old_size && new_size - old_size < old_size / 4)
        new_size = page_round(old_size + old_size / 4);
    s->zeroed = 0;
    protect_tail(s, false);
    if (cm_os_resize_in_place(s, old_size, new_size)) {
        s->map_size = new_size;
        protect_tail(s, true);
        account(0, (ptrdiff_t)new_size - (ptrdiff_t)old_size);
        return (char *)s + s->block_offset;
    }
    if (s->block_offset >= CM_SEG_SIZE) {
        /* Registry blocks are too rare to deserve a move of their own. */
        void *q = cm_huge_alloc(n, s->block_offset);
        if (!q) {
            protect_tail(s, true);
            return NULL;
        }
        memcpy(q, (char *)s + s->block_offset, cm_huge_usable(s));
        cm_huge_free(s);
        return q;
    }
    /* Unmark the old place before mremap releases it: another thread's new
     * mapping may land there at once and mark it as its own. */
    cm_segmap_clear(s);
    struct cm_segment *moved = cm_os_move_aligned(s, old_size, new_size, CM_SEG_SIZE);
    if (!moved) {
        protect_tail(s, true);
        cm_segmap_set(s, CM_TAG_HUGE);
        errno = ENOMEM;
        return NULL;
    }
    moved->map_size = new_size;
    protect_tail(moved, true);
    cm_segmap_set(moved, CM_TAG_HUGE);
    account(0, (ptrdiff_t)new_size - (ptrdiff_t)old_size);
    return (char *)moved + moved->block_offset;
}

void cm_huge_set_mark(struct cm_segment *s, bool on)
{
    s->mark = on;
}

bool cm_huge_marked(const struct cm_segment *s)
{
    return s->mark;
}
