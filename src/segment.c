/* Heap segments: the 4 MiB, 4 MiB-aligned pieces of address space an arena
 * gets from the OS layer (os.c), their headers, and the segment map that
 * says which granules hold them and for which arena (owner tags, types.h).
 * All functions here but the segment-map setters run with the arena lock
 * held. */
#include "internal.h"

void cm_segmap_set(const void *seg, uint8_t tag)
{
    __atomic_store_n(&cm_hot.segmap[(uintptr_t)seg >> CM_SEG_SHIFT], tag, __ATOMIC_RELEASE);
}

void cm_segmap_clear(const void *seg)
{
    __atomic_store_n(&cm_hot.segmap[(uintptr_t)seg >> CM_SEG_SHIFT], 0, __ATOMIC_RELEASE);
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
        cm_free_run_add(a, r);
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

/* Gives entirely free segments but the first keep back to the OS layer,
 * which unmaps them or keeps them for the heap to reuse. Returns the
 * number released. */
size_t cm_arena_release_segments(struct cm_arena *a, size_t keep)
{
    size_t released = 0;
    struct cm_segment **link = &a->segments;
    while (*link) {
        struct cm_segment *s = *link;
        if (!segment_is_free(s) || (keep && keep--)) {
            link = &s->next;
            continue;
        }
        for (size_t page = (size_t)1 << header_order(); page < CM_SEG_PAGES;) {
            struct cm_run *r = &s->runs[page];
            cm_free_run_take(a, r);
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

bool cm_segment_grow(struct cm_arena *a)
{
    struct cm_segment *s = cm_os_heap_segment();
    if (!s)
        return false;
    segment_init(a, s);
    return true;
}
