/* Purging: when free dirty pages go back to the kernel.
 *
 * Dirty free pages go back to the OS with madvise in two ways. A run that has
 * stayed free for the purge delay is purged the next time the arena
 * releases a run, so memory that a program keeps reusing is never purged and
 * faulted in again, while memory it is done with goes back soon. And when
 * an arena holds more dirty free pages than the trim threshold, the largest
 * dirty runs are purged at once until half of the threshold remains, which
 * bounds what a program that frees a lot at once keeps resident. */
#include "internal.h"

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
                cm_free_run_take(a, r);
                cm_os_purge(cm_run_base(r), CM_PAGE_SIZE << o);
                r->dirty = 0;
                cm_free_run_add(a, r);
            }
            if (was_last)
                break;
            r = next;
        }
    }
}

/* After a run was released at now: purge at once beyond the trim
 * threshold, else look for idle runs every half purge delay. */
void cm_purge_after_release(struct cm_arena *a, uint32_t now)
{
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
        cm_free_run_take(a, q);
        q->dirty = 0;
        end += (size_t)1 << q->order;
    }
    cm_os_purge((char *)s + (first << CM_PAGE_SHIFT), (end - first) << CM_PAGE_SHIFT);
    for (size_t page = first; page < end; page += (size_t)1 << s->runs[page].order)
        cm_free_run_add(a, &s->runs[page]);
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
