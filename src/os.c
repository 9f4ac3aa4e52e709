/* Memory from the OS, through the OS seam (prim.h): what the allocator
 * holds from the kernel, counted, and the sbrk heap.
 *
 * Heap segments come from the program break when we can get it: the break is
 * re-read every time, because other code may move it, and the gap up to the
 * next 4 MiB boundary is left unused. When sbrk fails the heap falls back to
 * mmap for good. A free segment at the top of the heap lowers the break
 * again, but only while the break is exactly where our segment ends; other
 * free sbrk segments are purged and kept for reuse, since memory around them
 * may not be ours.
 *
 * The segment map (segment.c) is not here: it says what the segments hold,
 * not where they came from. */
#include <errno.h>

#include "internal.h"

/* The sbrk heap's state, under its own lock. A forked child that finds the
 * lock held replaces the state (cm_os_fork_child), leaving the old one to
 * the update under way, if this thread was making it. */
struct heap_state {
    cm_lock_t lock;  /* first: see cm_lock_current */
    bool exhausted;  /* sbrk failed, or may have been halfway at a fork */
    /* Free sbrk segments below the top of the heap, purged, for reuse. */
    struct cm_segment *free_segments;
};

static struct heap_state heap_first;
static cm_lock_t *heap_now = &heap_first.lock;

static struct heap_state *heap_lock(void)
{
    return (struct heap_state *)cm_lock_current(&heap_now);
}

/* What cmalloc holds from the kernel, for the statistics. Every mapping,
 * unmapping and purge passes through this file, so counting here sees them
 * all; a mapping moved or resized counts only its change in size. */
static size_t held, held_peak;
static uint64_t mapped_total, unmapped_total, purged_total;

static void note_mapped(size_t n)
{
    __atomic_add_fetch(&mapped_total, n, __ATOMIC_RELAXED);
    size_t now = __atomic_add_fetch(&held, n, __ATOMIC_RELAXED);
    size_t peak = __atomic_load_n(&held_peak, __ATOMIC_RELAXED);
    while (now > peak && !__atomic_compare_exchange_n(&held_peak, &peak, now, true,
                                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

static void note_unmapped(size_t n)
{
    __atomic_add_fetch(&unmapped_total, n, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&held, n, __ATOMIC_RELAXED);
}

void cm_os_stats_get(struct cm_os_stats *out)
{
    out->held = __atomic_load_n(&held, __ATOMIC_RELAXED);
    out->held_peak = __atomic_load_n(&held_peak, __ATOMIC_RELAXED);
    out->mapped = __atomic_load_n(&mapped_total, __ATOMIC_RELAXED);
    out->unmapped = __atomic_load_n(&unmapped_total, __ATOMIC_RELAXED);
    out->purged = __atomic_load_n(&purged_total, __ATOMIC_RELAXED);
}

static void *raw_map(size_t size)
{
    return cm_prim_map(size);
}

static void raw_unmap(void *p, size_t size)
{
    cm_prim_unmap(p, size);
}

void *cm_os_map(size_t size)
{
    void *p = raw_map(size);
    if (p)
        note_mapped(size);
    return p;
}

void cm_os_unmap(void *p, size_t size)
{
    raw_unmap(p, size);
    note_unmapped(size);
}

/* Maps size bytes at an address that is a multiple of align (a power of two
 * >= the page size): over-map, then unmap the misaligned head and the tail. */
static void *raw_map_aligned(size_t size, size_t align)
{
    if (size > SIZE_MAX - align)
        return NULL;
    char *raw = raw_map(size + align);
    if (!raw)
        return NULL;
    char *aligned = (char *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
    size_t head = (size_t)(aligned - raw);
    size_t tail = align - head;
    if (head)
        raw_unmap(raw, head);
    if (tail)
        raw_unmap(aligned + size, tail);
    return aligned;
}

void *cm_os_map_aligned(size_t size, size_t align)
{
    void *p = raw_map_aligned(size, align);
    if (p)
        note_mapped(size);
    return p;
}

void cm_os_purge(void *p, size_t size)
{
    cm_prim_purge(p, size);
    __atomic_add_fetch(&purged_total, size, __ATOMIC_RELAXED);
}

/* Makes pages inaccessible (the guard page after a hardened huge block:
 * any access faults) or accessible again. Fails when the kernel cannot
 * split the mapping. */
bool cm_os_protect(void *p, size_t size, bool accessible)
{
    return cm_prim_protect(p, size, accessible);
}

bool cm_os_resize_in_place(void *p, size_t old_size, size_t new_size)
{
    if (new_size < old_size) {
        raw_unmap((char *)p + new_size, old_size - new_size);
        note_unmapped(old_size - new_size);
        return true;
    }
    bool ok = cm_prim_grow_in_place(p, old_size, new_size);
    if (ok)
        note_mapped(new_size - old_size);
    return ok;
}

/* Moves a mapping to a new, larger, aligned place without copying: reserve
 * an aligned range, then let mremap move the pages onto it. */
void *cm_os_move_aligned(void *p, size_t old_size, size_t new_size, size_t align)
{
    char *target = raw_map_aligned(new_size, align);
    if (!target)
        return NULL;
    void *moved = cm_prim_move(p, old_size, new_size, target);
    if (!moved) {
        raw_unmap(target, new_size);
        return NULL;
    }
    note_mapped(new_size - old_size);
    return moved;
}

static struct cm_segment *sbrk_segment(void)
{
    char *cur = cm_prim_sbrk(0);
    if (cur == (char *)-1)
        return NULL;
    uintptr_t start = ((uintptr_t)cur + CM_SEG_MASK) & ~(uintptr_t)CM_SEG_MASK;
    size_t incr = (size_t)(start - (uintptr_t)cur) + CM_SEG_SIZE;
    if (incr > (size_t)PTRDIFF_MAX)
        return NULL;
    char *old = cm_prim_sbrk((intptr_t)incr);
    if (old == (char *)-1)
        return NULL;
    note_mapped(incr);
    if (old != cur) {
        /* Someone moved the break between our two calls: what we got is
         * still ours, but may not hold an aligned segment. */
        start = ((uintptr_t)old + CM_SEG_MASK) & ~(uintptr_t)CM_SEG_MASK;
        if (start + CM_SEG_SIZE > (uintptr_t)old + incr)
            return NULL;
    }
    return (struct cm_segment *)start;
}

/* A zeroed, aligned segment for the heap, from sbrk when possible. The
 * segment map bit is set by the caller once the header is written. */
struct cm_segment *cm_os_heap_segment(void)
{
    int saved = errno;
    struct cm_segment *s = NULL;
    struct heap_state *h = heap_lock();
    if (h->free_segments) {
        s = h->free_segments;
        h->free_segments = s->next;
    } else if (!h->exhausted) {
        s = sbrk_segment();
        if (!s)
            h->exhausted = true;
    }
    cm_unlock(&h->lock);
    if (s) {
        s->from_mmap = 0;
    } else {
        s = cm_os_map_aligned(CM_SEG_SIZE, CM_SEG_SIZE);
        if (s)
            s->from_mmap = 1;
    }
    errno = saved;
    return s;
}

/* Takes back an entirely free heap segment (already out of the segment
 * map). Its pages read as zero when it is handed out again. */
void cm_os_release_segment(struct cm_segment *s)
{
    int saved = errno;
    if (s->from_mmap) {
        cm_os_unmap(s, CM_SEG_SIZE);
        errno = saved;
        return;
    }
    struct heap_state *h = heap_lock();
    if ((char *)s + CM_SEG_SIZE == cm_prim_sbrk(0)) {
        cm_prim_sbrk(-(intptr_t)CM_SEG_SIZE);
        note_unmapped(CM_SEG_SIZE);
        /* The pooled segments now at the top can follow it down. */
        bool lowered = true;
        while (lowered) {
            lowered = false;
            for (struct cm_segment **link = &h->free_segments; *link; link = &(*link)->next) {
                if ((char *)*link + CM_SEG_SIZE == cm_prim_sbrk(0)) {
                    *link = (*link)->next;
                    cm_prim_sbrk(-(intptr_t)CM_SEG_SIZE);
                    note_unmapped(CM_SEG_SIZE);
                    lowered = true;
                    break;
                }
            }
        }
    } else {
        cm_os_purge(s, CM_SEG_SIZE);
        s->next = h->free_segments;
        h->free_segments = s;
    }
    cm_unlock(&h->lock);
    errno = saved;
}

/* In a forked child: a heap whose lock was held may be halfway through
 * moving the break or relinking its free segments. The child forgets those
 * segments and grows the heap no more; heap segments come from mmap. */
void cm_os_fork_child(void)
{
    struct heap_state *fresh = cm_fork_replace_if_held(&heap_now, sizeof *fresh);
    if (fresh)
        fresh->exhausted = true;
}
