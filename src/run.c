/* Page runs: the pages of an arena's heap segments, managed as a binary
 * buddy system. All functions here run with the arena lock held.
 * segment.c lays segments out as free runs; purge.c decides when free
 * dirty runs go back to the kernel.
 *
 * A free run of order o sits on dirty_runs[o] (pages that may be resident)
 * or clean_runs[o] (purged or never touched). Allocation prefers the
 * smallest order, and in it a dirty run, so reuse takes memory that is
 * already faulted in. A dirty list is kept in the order its runs became
 * free, the newest first, so purge.c finds the run left alone longest at
 * its back. Releasing a run merges it with its buddy while the buddy is a
 * free run of the same order (at most CM_MAX_ORDER steps), so free space
 * coalesces back into half-segments.
 */
#include "debug.h"
#include "internal.h"

void cm_free_run_add(struct cm_arena *a, struct cm_run *r)
{
    size_t pages = (size_t)1 << r->order;
    r->state = CM_RUN_FREE;
    r->cls = 0;
    if (r->dirty)
        cm_list_insert(&a->dirty_runs[r->order], r, true);
    else
        cm_list_insert(&a->clean_runs[r->order], r, false);
    a->free_pages += pages;
    if (r->dirty)
        a->dirty_pages += pages;
}

void cm_free_run_take(struct cm_arena *a, struct cm_run *r)
{
    size_t pages = (size_t)1 << r->order;
    cm_list_remove(r->dirty ? &a->dirty_runs[r->order] : &a->clean_runs[r->order], r);
    a->free_pages -= pages;
    if (r->dirty)
        a->dirty_pages -= pages;
}

struct cm_run *cm_run_alloc(struct cm_arena *a, unsigned order)
{
    cm_assert(order <= CM_MAX_ORDER);
    unsigned o = order;
    while (o <= CM_MAX_ORDER && !a->dirty_runs[o] && !a->clean_runs[o])
        o++;
    if (o > CM_MAX_ORDER) {
        if (!cm_segment_grow(a))
            return NULL;
        o = order;
        while (!a->dirty_runs[o] && !a->clean_runs[o])
            o++;
    }
    struct cm_run *r = a->dirty_runs[o] ? a->dirty_runs[o] : a->clean_runs[o];
    cm_free_run_take(a, r);
    struct cm_segment *s = cm_run_segment(r);
    size_t first = cm_run_first_page(r);
    /* The halves left over go to the front of their dirty lists, stamped
     * now to keep the lists in order: at worst they stay a little longer. */
    uint32_t now = r->dirty && o > order ? cm_prim_now_ms_coarse() : 0;
    while (o > order) {
        o--;
        struct cm_run *upper = &s->runs[first + ((size_t)1 << o)];
        upper->order = (uint8_t)o;
        upper->dirty = r->dirty;
        upper->dirty_ms = now;
        cm_free_run_add(a, upper);
    }
    r->order = (uint8_t)order;
    r->next = r->prev = NULL;
    return r;
}

void cm_run_release(struct cm_arena *a, struct cm_run *r)
{
    cm_assert(r->state == CM_RUN_BLOCKS && r->order <= CM_MAX_ORDER);
    struct cm_segment *s = cm_run_segment(r);
    size_t first = cm_run_first_page(r);
    unsigned order = r->order;
    a->released_pages += (size_t)1 << order;
    r->state = CM_RUN_META;

    while (order < CM_MAX_ORDER) {
        size_t buddy_page = first ^ ((size_t)1 << order);
        struct cm_run *buddy = &s->runs[buddy_page];
        if (buddy->state != CM_RUN_FREE || buddy->order != order)
            break;
        cm_free_run_take(a, buddy);
        buddy->state = CM_RUN_META;  /* no longer the start of a run */
        if (buddy_page < first)
            first = buddy_page;
        order++;
    }
    /* The released pages were used, so the merged run is dirty; any clean
     * buddy pages in it are counted as dirty until the next purge, which
     * only overestimates. */
    struct cm_run *merged = &s->runs[first];
    merged->order = (uint8_t)order;
    merged->dirty = 1;
    merged->dirty_ms = cm_prim_now_ms_coarse();
    cm_free_run_add(a, merged);
}

