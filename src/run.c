/* Page runs: the pages of an arena's heap segments, managed as a binary
 * buddy system. All functions here run with the arena lock held.
 *
 * A free run of order o sits on free_runs[o], dirty runs (pages that may be
 * resident) at the front so reuse prefers memory that is already faulted in,
 * clean (purged or never touched) runs at the back. Releasing a run merges it
 * with its buddy while the buddy is a free run of the same order, so free
 * space coalesces back into half-segments.
 *
 * Dirty free pages go back to the OS with madvise in two ways. A run that has
 * stayed free for the purge delay is purged the next time the arena
 * releases a run, so memory that a program keeps reusing is never purged and
 * faulted in again, while memory it is done with goes back soon. And when
 * an arena holds more dirty free pages than the trim threshold, the largest
 * dirty runs are purged at once until half of the threshold remains, which
 * bounds what a program that frees a lot at once keeps resident. */
#include <time.h>

#include "internal.h"

static uint32_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static void free_list_add(struct cm_arena *a, struct cm_run *r)
{
    size_t pages = (size_t)1 << r->order;
    r->state = CM_RUN_FREE;
    r->cls = 0;
    cm_list_insert(&a->free_runs[r->order], r, r->dirty);
    a->free_pages += pages;
    if (r->dirty)
        a->dirty_pages += pages;
}

static void free_list_take(struct cm_arena *a, struct cm_run *r)
{
    size_t pages = (size_t)1 << r->order;
    cm_list_remove(&a->free_runs[r->order], r);
    a->free_pages -= pages;
    if (r->dirty)
        a->dirty_pages -= pages;
}

/* The header occupies the first pages of a heap segment as one META run of
 * the smallest order that holds it; the rest is cut into the largest
 * aligned free runs that fit. A segment is entirely free exactly when its
 * free runs have merged back into that layout. */
static unsigned header_order(void)
{
    size_t header_pages = (sizeof(struct cm_segment) + CM_PAGE_SIZE - 1) >> CM_PAGE_SHIFT;
    unsigned order = 0;
    while (((size_t)1 << order) < header_pages)
        order++;
    return order;
}

static unsigned layout_order(size_t page)
{
    unsigned order = (unsigned)__builtin_ctzl(page);
    return order > CM_MAX_ORDER ? CM_MAX_ORDER : order;
}

static void segment_init(struct cm_arena *a, struct cm_segment *s)
{
    unsigned meta_order = header_order();
    s->arena = a;
    s->map_size = CM_SEG_SIZE;
    s->kind = CM_SEG_HEAP;
    s->runs[0].state = CM_RUN_META;
    s->runs[0].order = (uint8_t)meta_order;

    for (size_t page = (size_t)1 << meta_order; page < CM_SEG_PAGES;) {
        struct cm_run *r = &s->runs[page];
        r->order = (uint8_t)layout_order(page);
        r->dirty = 0;
        free_list_add(a, r);
        page += (size_t)1 << r->order;
    }

    s->next = a->segments;
    a->segments = s;
    if (++a->nsegments > a->nsegments_peak)
        a->nsegments_peak = a->nsegments;
    cm_segmap_set(s, a->tag);
}

static bool segment_is_free(const struct cm_segment *s)
{
    for (size_t page = (size_t)1 << header_order(); page < CM_SEG_PAGES;) {
        const struct cm_run *r = &s->runs[page];
        if (r->state != CM_RUN_FREE || r->order != layout_order(page))
            return false;
        page += (size_t)1 << r->order;
    }
    return true;
}

/* Gives entirely free segments back to the OS layer, which unmaps them or
 * keeps them for the heap to reuse. Returns the number released. */
size_t cm_arena_release_segments(struct cm_arena *a)
{
    size_t released = 0;
    struct cm_segment **link = &a->segments;
    while (*link) {
        struct cm_segment *s = *link;
        if (!segment_is_free(s)) {
            link = &s->next;
            continue;
        }
        for (size_t page = (size_t)1 << header_order(); page < CM_SEG_PAGES;) {
            struct cm_run *r = &s->runs[page];
            free_list_take(a, r);
            page += (size_t)1 << r->order;
        }
        *link = s->next;
        a->nsegments--;
        cm_segmap_clear(s);
        cm_os_release_segment(s);
        released++;
    }
    return released;
}

static bool arena_grow(struct cm_arena *a)
{
    struct cm_segment *s = cm_os_heap_segment();
    if (!s)
        return false;
    segment_init(a, s);
    return true;
}

struct cm_run *cm_run_alloc(struct cm_arena *a, unsigned order)
{
    unsigned o = order;
    while (o <= CM_MAX_ORDER && !a->free_runs[o])
        o++;
    if (o > CM_MAX_ORDER) {
        if (!arena_grow(a))
            return NULL;
        o = order;
        while (!a->free_runs[o])
            o++;
    }
    struct cm_run *r = a->free_runs[o];
    free_list_take(a, r);
    struct cm_segment *s = cm_run_segment(r);
    size_t first = cm_run_first_page(r);
    while (o > order) {
        o--;
        struct cm_run *upper = &s->runs[first + ((size_t)1 << o)];
        upper->order = (uint8_t)o;
        upper->dirty = r->dirty;
        upper->dirty_ms = r->dirty_ms;
        free_list_add(a, upper);
    }
    r->order = (uint8_t)order;
    r->next = r->prev = NULL;
    return r;
}

/* Purges the dirty free runs that have been free for the purge delay. */
static void purge_idle(struct cm_arena *a, uint32_t now)
{
    a->decay_checked_ms = now;
    for (unsigned o = 0; o <= CM_MAX_ORDER; o++) {
        /* Dirty runs sit at the front and a purged run moves to the back, so
         * walking from the front up to the run that was last when the walk
         * began sees every dirty run once. */
        struct cm_run *r = a->free_runs[o];
        struct cm_run *last = r ? r->prev : NULL;
        while (r && r->dirty) {
            struct cm_run *next = r->next;
            bool was_last = r == last;
            if (now - r->dirty_ms >= cm_opt.purge_delay_ms) {
                free_list_take(a, r);
                cm_os_purge(cm_run_base(r), CM_PAGE_SIZE << o);
                r->dirty = 0;
                free_list_add(a, r);
            }
            if (was_last)
                break;
            r = next;
        }
    }
}

void cm_run_release(struct cm_arena *a, struct cm_run *r)
{
    struct cm_segment *s = cm_run_segment(r);
    size_t first = cm_run_first_page(r);
    unsigned order = r->order;
    r->state = CM_RUN_META;

    while (order < CM_MAX_ORDER) {
        size_t buddy_page = first ^ ((size_t)1 << order);
        struct cm_run *buddy = &s->runs[buddy_page];
        if (buddy->state != CM_RUN_FREE || buddy->order != order)
            break;
        free_list_take(a, buddy);
        buddy->state = CM_RUN_META;  /* no longer the start of a run */
        if (buddy_page < first)
            first = buddy_page;
        order++;
    }
    /* The released pages were used, so the merged run is dirty; any clean
     * buddy pages in it are counted as dirty until the next purge, which
     * only overestimates. */
    struct cm_run *merged = &s->runs[first];
    uint32_t now = now_ms();
    merged->order = (uint8_t)order;
    merged->dirty = 1;
    merged->dirty_ms = now;
    free_list_add(a, merged);

    if (a->dirty_pages << CM_PAGE_SHIFT > cm_opt.trim_threshold)
        cm_arena_purge(a, (cm_opt.trim_threshold >> CM_PAGE_SHIFT) / 2);
    else if (now - a->decay_checked_ms >= cm_opt.purge_delay_ms / 2)
        purge_idle(a, now);
}

/* Purges the dirty free run r together with the dirty free runs that
 * follow it in its segment, which buddies of other sizes keep apart: one
 * madvise for the whole stretch. Returns the pages purged. */
static size_t purge_stretch(struct cm_arena *a, struct cm_run *r)
{
    struct cm_segment *s = cm_run_segment(r);
    size_t first = cm_run_first_page(r), end = first;
    while (end < CM_SEG_PAGES && s->runs[end].state == CM_RUN_FREE && s->runs[end].dirty) {
        struct cm_run *q = &s->runs[end];
        free_list_take(a, q);
        q->dirty = 0;
        end += (size_t)1 << q->order;
    }
    cm_os_purge((char *)s + (first << CM_PAGE_SHIFT), (end - first) << CM_PAGE_SHIFT);
    for (size_t page = first; page < end; page += (size_t)1 << s->runs[page].order)
        free_list_add(a, &s->runs[page]);
    return end - first;
}

/* Returns dirty free pages to the OS, largest runs first, until at most
 * keep_pages remain dirty. Returns the number of pages purged. */
size_t cm_arena_purge(struct cm_arena *a, size_t keep_pages)
{
    size_t purged = 0;
    for (int o = CM_MAX_ORDER; o >= 0 && a->dirty_pages > keep_pages; o--) {
        struct cm_run *r;
        while (a->dirty_pages > keep_pages && (r = a->free_runs[o]) && r->dirty)
            purged += purge_stretch(a, r);
    }
    return purged;
}
