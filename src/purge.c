/* Purging: when free dirty pages go back to the kernel.
 *
 * The policy (doc/purge.md gives the measurements behind it):
 *
 * - Decay. A dirty free run that has been left alone for the purge delay
 *   (purge_delay_ms, 1 s by default) is purged, the one left alone longest
 *   first. Memory a program keeps reusing never gets that old, so it is
 *   never purged and faulted in again; memory it is done with goes back.
 *
 * - The cap. An arena holding more dirty free pages than the trim
 *   threshold purges the excess, oldest first, but only once it has stayed
 *   above the threshold for a grace period (CM_PURGE_GRACE_MS and _TICKS). A program
 *   that frees a large batch and allocates it again at once (a garbage
 *   collector's sweep, a request's buffers) dips back under the threshold
 *   within it and keeps its pages: purging them would only fault them in
 *   again, page by page. A program that frees a lot and keeps going stays
 *   above it and gets the excess back within the grace period.
 *
 * - A budget per call, spent rarely. The purging is done in ticks, one at
 *   the end of each locked arena operation that released runs (a flush, a
 *   refill, a free to the arena), never inside the release itself. A tick
 *   purges for the cap only once the excess has reached a chunk
 *   (CM_PURGE_CHUNK_PAGES), and then one chunk; it looks for runs left
 *   alone at most eight times per purge delay, and purges at most a chunk
 *   of them. No call pays for a pile of purging, and few calls pay at all:
 *   a madvise costs about as much for one page as the syscall and the TLB
 *   flush it implies, so many small ones would put a purge into every
 *   thousandth call (the latency workload's 99.9th percentile), where a
 *   few large ones stay out of it.
 *
 * - Idle return, which waits for no call: when a thread exits, its arena's
 *   dirty pages beyond what its remaining threads have in use go back at
 *   once (all of them, and its free segments, when no thread is left), and
 *   the background purge thread (option background_purge) runs the decay
 *   on every arena twice per purge delay.
 *
 * Pages go back with MADV_DONTNEED (prim/linux.c): RSS falls at once, and
 * so does what the program is charged for. MADV_FREE would be cheaper to
 * issue but leaves the pages in RSS until the kernel runs short, which is
 * what users measure and complain about. */
#include "internal.h"

/* How long a run has been free at now; 0 for a stamp from the future (a
 * clock read before the stamp was written). */
static uint32_t age_ms(uint32_t now, uint32_t then)
{
    uint32_t age = now - then;
    return age > UINT32_MAX / 2 ? 0 : age;
}

/* The dirty free run left alone longest: each dirty list is in the order
 * its runs became free, so it is at the back of one of them. */
static struct cm_run *oldest_dirty(struct cm_arena *a, uint32_t now)
{
    struct cm_run *best = NULL;
    uint32_t best_age = 0;
    for (unsigned o = 0; o <= CM_MAX_ORDER; o++) {
        struct cm_run *head = a->dirty_runs[o];
        if (!head)
            continue;
        uint32_t age = age_ms(now, head->prev->dirty_ms);
        if (!best || age > best_age) {
            best = head->prev;
            best_age = age;
        }
    }
    return best;
}

/* Purges the dirty free run r together with the dirty free runs at least
 * min_age old that follow it in its segment (buddies of other sizes keep
 * them apart): one madvise for the stretch, of at most budget pages beyond
 * r. Returns the pages purged. */
static size_t purge_stretch(struct cm_arena *a, struct cm_run *r, uint32_t now, uint32_t min_age,
                            size_t budget)
{
    struct cm_segment *s = cm_run_segment(r);
    size_t first = cm_run_first_page(r), end = first;
    struct cm_run *q = r;
    do {
        cm_free_run_take(a, q);
        q->dirty = 0;
        end += (size_t)1 << q->order;
        q = end < CM_SEG_PAGES ? &s->runs[end] : NULL;
    } while (q && end - first < budget && q->state == CM_RUN_FREE && q->dirty &&
             age_ms(now, q->dirty_ms) >= min_age);
    cm_os_purge((char *)s + (first << CM_PAGE_SHIFT), (end - first) << CM_PAGE_SHIFT);
    for (size_t page = first; page < end; page += (size_t)1 << s->runs[page].order)
        cm_free_run_add(a, &s->runs[page]);
    return end - first;
}

/* Purges dirty free runs at least min_age old, oldest first, until at most
 * keep_pages stay dirty or about budget pages are purged. Returns the
 * pages purged. */
static size_t purge_oldest(struct cm_arena *a, size_t keep_pages, uint32_t now, uint32_t min_age,
                           size_t budget)
{
    size_t purged = 0;
    while (a->dirty_pages > keep_pages && purged < budget) {
        struct cm_run *r = oldest_dirty(a, now);
        if (!r || age_ms(now, r->dirty_ms) < min_age)
            break;
        purged += purge_stretch(a, r, now, min_age, budget - purged);
    }
    return purged;
}

static uint32_t purge_delay(void)
{
    return cm_opt.purge_delay_ms > UINT32_MAX / 4 ? UINT32_MAX / 4 : (uint32_t)cm_opt.purge_delay_ms;
}

/* Whether a has stayed above the cap for the grace period; a purge delay
 * shorter than it asks for no more waiting than the delay. */
static bool over_cap_for_grace(const struct cm_arena *a, uint32_t now, uint32_t delay)
{
    if (delay < CM_PURGE_GRACE_MS)
        return a->over_cap_ms && age_ms(now, a->over_cap_ms) >= delay;
    return a->over_cap_ms && age_ms(now, a->over_cap_ms) >= CM_PURGE_GRACE_MS &&
           a->over_cap_ticks >= CM_PURGE_GRACE_TICKS;
}

void cm_purge_tick(struct cm_arena *a)
{
    if (!a->released_pages && !a->over_cap_ms)
        return;
    a->released_pages = 0;
    uint32_t now = cm_prim_now_ms_coarse(), delay = purge_delay();
    size_t cap = cm_opt.trim_threshold >> CM_PAGE_SHIFT;
    if (a->dirty_pages <= cap) {
        a->over_cap_ms = 0;
        a->over_cap_ticks = 0;
    } else if (!a->over_cap_ms) {
        a->over_cap_ms = now ? now : 1;
        a->over_cap_ticks = 1;
    } else {
        a->over_cap_ticks++;
        if (a->dirty_pages - cap >= CM_PURGE_CHUNK_PAGES && over_cap_for_grace(a, now, delay))
            purge_oldest(a, a->dirty_pages - CM_PURGE_CHUNK_PAGES, now, 0, CM_PURGE_CHUNK_PAGES);
    }
    if (!cm_background_running() && age_ms(now, a->decay_checked_ms) >= delay / 8) {
        a->decay_checked_ms = now;
        purge_oldest(a, 0, now, delay, CM_PURGE_CHUNK_PAGES);
    }
}

void cm_purge_background(struct cm_arena *a)
{
    uint32_t now = cm_prim_now_ms_coarse(), delay = purge_delay();
    size_t cap = cm_opt.trim_threshold >> CM_PAGE_SHIFT;
    if (a->dirty_pages > cap && over_cap_for_grace(a, now, delay))
        purge_oldest(a, cap, now, 0, SIZE_MAX);
    purge_oldest(a, 0, now, delay, SIZE_MAX);
}

size_t cm_purge_decay(struct cm_arena *a)
{
    return purge_oldest(a, 0, cm_prim_now_ms_coarse(), purge_delay(), SIZE_MAX);
}

size_t cm_arena_purge(struct cm_arena *a, size_t keep_pages)
{
    return purge_oldest(a, keep_pages, cm_prim_now_ms_coarse(), 0, SIZE_MAX);
}
