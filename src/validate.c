/* The heap validator: the invariants types.h states, checked by walking
 * every arena, segment, run, bin, thread cache and remote list (debug.h).
 * Compiled in debug builds only (CMALLOC_DEBUG).
 *
 * Each arena is checked with its lock held, one arena at a time, core
 * arenas by index and then the features' arenas (the order of fork.c's
 * lock table, and never two arena locks at once). Per arena, in order:
 *
 *   1. the arena's own fields (index, tag, counters against their peaks);
 *   2. its segment list: each segment's segment-map byte is the arena's
 *      tag (checked before anything is read from the segment), its kind is
 *      heap, its arena pointer is this arena;
 *   3. its free lists, structurally: every entry is a run descriptor in one
 *      of its segments, FREE, of the list's order, dirty runs before clean;
 *   4. every segment's buddy layout: the header run at page 0, then runs
 *      aligned to 2^order pages, orders <= CM_MAX_ORDER, valid states,
 *      tiling the segment exactly; free runs have page class 0 and no
 *      free buddy of their order; BLOCKS runs have their class in every
 *      page, carved <= nblocks, a free list of carved block starts that
 *      carry the free key, nfree = free-list length + never-carved blocks,
 *      and bin links exactly when nfree > 0;
 *   5. the free lists against the layout: each entry is the start of a run
 *      of the layout, and the lists hold every free run, free_pages and
 *      dirty_pages pages;
 *   6. the bins: each bin's list holds exactly the runs of its class that
 *      have free blocks, nruns counts the runs of its class, nmalloc - nfree
 *      is the number of blocks out of those runs, and bytes_out their bytes;
 *   7. the thread caches attached to the arena: each bin's head, full and
 *      empty marks inside its class's slot region, count <= capacity <=
 *      region size, every cached pointer a carved block start of that class
 *      in one of the arena's segments, carrying the free key, once in the
 *      bin and not on its run's free list; the thread's remote list holds
 *      remote_blocks blocks of other core arenas, remote_count of each
 *      class and remote_bytes bytes;
 *   8. the arena's remote stacks: every link a block of that class of this
 *      arena, as for cached blocks; and the blocks cached or on remote
 *      stacks are no more than the blocks out of the runs.
 *
 * Nothing is written, nothing is allocated, and a pointer is read through
 * only after the segment map (and, for a block, the page class and the run
 * descriptor) vouch for it, so corrupted state is reported, not crashed on,
 * wherever a check can tell. Lists are walked with a bound and with Brent's
 * cycle detection. */
#include <stdarg.h>
#include <string.h>

#include "internal.h"
#include "debug.h"

#if CM_DEBUG > 0

/* The features' arenas. Weak, so that this file links whether the core
 * defines them or not; absent, they read as an empty table. */
extern struct cm_arena *cm_extra_arenas[] __attribute__((weak));
extern unsigned cm_nextra_arenas __attribute__((weak));

#ifdef CM_MAX_EXTRA_ARENAS
#define VALIDATE_MAX_EXTRA CM_MAX_EXTRA_ARENAS
#else
#define VALIDATE_MAX_EXTRA 16
#endif

CM_COLD _Noreturn void cm_assert_fail(const char *expr, const char *file, int line,
                                      const char *func)
{
    cm_fatal("assertion failed: %s (%s:%d, %s)", expr, file, line, func);
}

/* ---- the walk's state and its one report ---- */

struct vctx {
    char *why;
    size_t cap;
    struct cm_arena *a;
    unsigned tag;
    const char *kind;               /* "arena" or "feature arena" */
    unsigned num;
    const struct cm_segment *seg;   /* segment being checked, for the report */
    /* Found in the segments' layouts. */
    size_t free_runs, free_pages, dirty_pages;
    size_t runs_of[CM_NCLASSES + 1];    /* BLOCKS runs per class */
    size_t with_free[CM_NCLASSES + 1];  /* of them, with nfree > 0 */
    uint64_t out[CM_NCLASSES + 1];      /* blocks out of the runs per class */
    uint64_t held[CM_NCLASSES + 1];     /* of them, in caches and remote stacks */
};

static bool fail(struct vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(struct vctx *v, const char *fmt, ...)
{
    if (!v->cap)
        return false;
    size_t n = v->seg ? cm_format(v->why, v->cap, "%s %u segment %p: ", v->kind, v->num,
                                  (const void *)v->seg)
                      : cm_format(v->why, v->cap, "%s %u: ", v->kind, v->num);
    if (n < v->cap - 1) {
        va_list ap;
        va_start(ap, fmt);
        cm_vformat(v->why + n, v->cap - n, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* Brent's cycle detection, one step per list entry: true when p was seen
 * before. */
struct cycle {
    const void *mark;
    size_t power, steps;
};
#define CYCLE_INIT {NULL, 1, 0}

static bool cycle_step(struct cycle *c, const void *p)
{
    if (p && p == c->mark)
        return true;
    if (++c->steps == c->power) {
        c->mark = p;
        c->power *= 2;
        c->steps = 0;
    }
    return false;
}

static unsigned header_order(void)
{
    size_t pages = (sizeof(struct cm_segment) + CM_PAGE_SIZE - 1) >> CM_PAGE_SHIFT;
    unsigned order = 0;
    while (((size_t)1 << order) < pages)
        order++;
    return order;
}

static size_t order_pages(unsigned order)
{
    return (size_t)1 << order;
}

/* Whether r points at a run descriptor in the header of a segment of this
 * arena; *page is then the run's first page. Reads only the segment map. */
static bool run_desc(const struct vctx *v, const struct cm_run *r, size_t *page)
{
    uintptr_t x = (uintptr_t)r;
    if (!r || cm_segmap_tag(x) != v->tag)
        return false;
    const struct cm_segment *s = cm_segment_of(r);
    uintptr_t base = (uintptr_t)&s->runs[0];
    if (x < base || x - base >= sizeof s->runs || (x - base) % sizeof(struct cm_run))
        return false;
    *page = (size_t)((x - base) / sizeof(struct cm_run));
    return true;
}

/* r's ring links (free lists, bins) point at run descriptors of the arena
 * and agree with each other. */
static bool ring_links_ok(const struct vctx *v, const struct cm_run *r)
{
    size_t page;
    return run_desc(v, r->next, &page) && run_desc(v, r->prev, &page) && r->next->prev == r &&
           r->prev->next == r;
}

/* Whether page starts a run of s's layout, which must be a valid buddy
 * tiling: descends from the half-segment holding page, through the
 * aligned halves that are split, to the run that covers it. */
static bool is_run_start(const struct cm_segment *s, size_t page)
{
    unsigned k = CM_MAX_ORDER;
    size_t q = page & ~(order_pages(k) - 1);
    for (;;) {
        if (s->runs[q].order >= k || k == 0)
            return q == page;
        k--;
        if (page & order_pages(k))
            q += order_pages(k);
    }
}

/* ---- 1 and 2: the arena and its segment list ---- */

static bool check_arena_fields(struct vctx *v, bool extra, unsigned num)
{
    struct cm_arena *a = v->a;
    if (!extra && (a->index != num || a->tag != num + 1))
        return fail(v, "index %u and tag %u, expected index %u and tag %u", a->index,
                    (unsigned)a->tag, num, num + 1);
    if (extra && (a->tag < CM_TAG_EXTRA_FIRST || a->tag >= CM_TAG_NONE))
        return fail(v, "tag %u is not a feature arena's tag", (unsigned)a->tag);
    if (a->dirty_pages > a->free_pages)
        return fail(v, "dirty_pages %zu above free_pages %zu", a->dirty_pages, a->free_pages);
    if (a->nsegments > a->nsegments_peak)
        return fail(v, "nsegments %zu above nsegments_peak %zu", a->nsegments,
                    a->nsegments_peak);
    if (a->bytes_out > a->bytes_out_peak)
        return fail(v, "bytes_out %zu above bytes_out_peak %zu", a->bytes_out,
                    a->bytes_out_peak);
    return true;
}

static bool check_segment_list(struct vctx *v)
{
    struct cm_arena *a = v->a;
    struct cycle cy = CYCLE_INIT;
    size_t n = 0;
    for (const struct cm_segment *s = a->segments; s; s = s->next) {
        v->seg = s;
        if (n == a->nsegments)
            return fail(v, "the segment list is longer than nsegments %zu", a->nsegments);
        if ((uintptr_t)s & CM_SEG_MASK)
            return fail(v, "on the segment list but not aligned to a segment");
        unsigned tag = cm_segmap_tag((uintptr_t)s);
        if (tag != v->tag)
            return fail(v, "segment map byte %u, expected the arena's tag %u", tag, v->tag);
        if (s->kind != CM_SEG_HEAP)
            return fail(v, "kind %u, expected CM_SEG_HEAP (%u)", (unsigned)s->kind,
                        (unsigned)CM_SEG_HEAP);
        if (s->arena != a)
            return fail(v, "arena pointer %p, expected the arena %p", (void *)s->arena,
                        (void *)a);
        if (s->map_size != CM_SEG_SIZE)
            return fail(v, "map_size %zu, expected %zu", s->map_size, (size_t)CM_SEG_SIZE);
        if (s->from_mmap > 1)
            return fail(v, "from_mmap %u is not 0 or 1", (unsigned)s->from_mmap);
        if (cycle_step(&cy, s->next))
            return fail(v, "the segment list loops back to segment %p", (void *)s->next);
        n++;
    }
    v->seg = NULL;
    if (n != a->nsegments)
        return fail(v, "nsegments %zu but %zu segments on the list", a->nsegments, n);
    return true;
}

/* ---- 3 and 5: the free lists ---- */

static bool check_free_lists(struct vctx *v, bool against_layout)
{
    struct cm_arena *a = v->a;
    size_t runs = 0, pages = 0, dirty = 0;
    for (unsigned l = 0; l < 2 * (CM_MAX_ORDER + 1); l++) {
        unsigned o = l % (CM_MAX_ORDER + 1);
        bool dirty_list = l <= CM_MAX_ORDER;
        const struct cm_run *head = dirty_list ? a->dirty_runs[o] : a->clean_runs[o];
        struct cycle cy = CYCLE_INIT;
        for (const struct cm_run *r = head; r;) {
            size_t page;
            if (!run_desc(v, r, &page))
                return fail(v, "order-%u free list: entry %p is not a run descriptor in a "
                               "segment of the arena (segment map byte %u)",
                            o, (const void *)r, cm_segmap_tag((uintptr_t)r));
            v->seg = cm_segment_of(r);
            if (r->state != CM_RUN_FREE)
                return fail(v, "run at page %zu is on the order-%u free list but its state is "
                               "%u, not FREE",
                            page, o, (unsigned)r->state);
            if (r->order != o)
                return fail(v, "free run at page %zu is on the order-%u free list but has "
                               "order %u",
                            page, o, (unsigned)r->order);
            if (page & (order_pages(o) - 1))
                return fail(v, "free run at page %zu of order %u is not aligned to %zu pages",
                            page, o, order_pages(o));
            if (r->dirty > 1)
                return fail(v, "free run at page %zu: dirty flag %u", page, (unsigned)r->dirty);
            if (r->dirty != dirty_list)
                return fail(v, "free run at page %zu is %s but on the order-%u %s list", page,
                            r->dirty ? "dirty" : "clean", o, dirty_list ? "dirty" : "clean");
            if (against_layout && !is_run_start(v->seg, page))
                return fail(v, "free run at page %zu (order %u) is on a free list but does "
                               "not start a run of the segment's layout",
                            page, o);
            if (!ring_links_ok(v, r))
                return fail(v, "free run at page %zu (order-%u free list): next %p and prev "
                               "%p are not consistent links",
                            page, o, (void *)r->next, (void *)r->prev);
            if (dirty_list && r != head && (int32_t)(r->prev->dirty_ms - r->dirty_ms) < 0)
                return fail(v, "free run at page %zu became free at %u ms, after the run "
                               "before it on the order-%u dirty list (%u ms)",
                            page, r->dirty_ms, o, r->prev->dirty_ms);
            runs++;
            pages += order_pages(o);
            dirty += r->dirty ? order_pages(o) : 0;
            r = r->next;
            if (r == head)
                break;
            if (cycle_step(&cy, r))
                return fail(v, "order-%u free list loops without coming back to its head", o);
        }
        v->seg = NULL;
    }
    if (pages != a->free_pages)
        return fail(v, "free_pages %zu but the free lists hold %zu pages", a->free_pages, pages);
    if (dirty != a->dirty_pages)
        return fail(v, "dirty_pages %zu but the free lists hold %zu dirty pages",
                    a->dirty_pages, dirty);
    if (against_layout && runs != v->free_runs)
        return fail(v, "the free lists hold %zu runs but the segments have %zu free runs", runs,
                    v->free_runs);
    if (against_layout && pages != v->free_pages)
        return fail(v, "the free lists hold %zu pages but the segments' free runs have %zu",
                    pages, v->free_pages);
    return true;
}

/* ---- 4: the layout of each segment ---- */

static bool check_blocks_run(struct vctx *v, const struct cm_segment *s, size_t page,
                             const struct cm_run *r)
{
    unsigned cls = r->cls;
    if (cls == 0 || cls > CM_NCLASSES)
        return fail(v, "run at page %zu: BLOCKS run of class %u, which is no class", page, cls);
    const struct cm_class *c = &cm_classes[cls];
    if (r->order != c->order)
        return fail(v, "run at page %zu (class %u): order %u, but runs of the class have "
                       "order %u",
                    page, cls, (unsigned)r->order, (unsigned)c->order);
    for (size_t i = page; i < page + order_pages(r->order); i++) {
        if (s->page_cls[i] != cls)
            return fail(v, "run at page %zu (class %u): page_cls[%zu] is %u, not the run's "
                           "class",
                        page, cls, i, (unsigned)s->page_cls[i]);
    }
    if (r->carved > c->nblocks)
        return fail(v, "run at page %zu (class %u): carved %u above nblocks %u", page, cls,
                    r->carved, c->nblocks);
    if (r->nfree > c->nblocks)
        return fail(v, "run at page %zu (class %u): nfree %u above nblocks %u", page, cls,
                    r->nfree, c->nblocks);
    uintptr_t base = (uintptr_t)cm_run_base(r);
    uintptr_t carved_end = base + (uintptr_t)r->carved * c->size;
    size_t len = 0;
    for (const struct cm_block *b = r->free; b; b = cm_link_decode(b->next_enc), len++) {
        uintptr_t x = (uintptr_t)b;
        if (x < base || x >= base + (uintptr_t)c->nblocks * c->size || (x - base) % c->size)
            return fail(v, "run at page %zu (class %u): free-list link %zu decodes to %p, "
                           "which is not a block start in the run",
                        page, cls, len, (const void *)b);
        if (x >= carved_end)
            return fail(v, "run at page %zu (class %u): free-list link %zu decodes to %p, "
                           "block %zu, which was never carved (carved %u)",
                        page, cls, len, (const void *)b, (size_t)((x - base) / c->size),
                        r->carved);
        if (len == r->carved)
            return fail(v, "run at page %zu (class %u): the free list is longer than the "
                           "%u carved blocks (a loop of links?)",
                        page, cls, r->carved);
        if (b->free_key != cm_hot.free_key)
            return fail(v, "run at page %zu (class %u): free-list block %p (link %zu) lacks "
                           "the free key",
                        page, cls, (const void *)b, len);
    }
    uint32_t never = c->nblocks - r->carved;
    if (r->nfree != len + never)
        return fail(v, "run at page %zu (class %u): nfree %u but %zu free blocks and %u never "
                       "carved",
                    page, cls, r->nfree, len, never);
    if (r->nfree == 0 && (r->next || r->prev))
        return fail(v, "run at page %zu (class %u): nfree 0 but it has bin links (next %p, "
                       "prev %p)",
                    page, cls, (void *)r->next, (void *)r->prev);
    if (r->nfree > 0 && !ring_links_ok(v, r))
        return fail(v, "run at page %zu (class %u): nfree %u but its bin links (next %p, prev "
                       "%p) are not consistent",
                    page, cls, r->nfree, (void *)r->next, (void *)r->prev);
    v->runs_of[cls]++;
    v->with_free[cls] += r->nfree > 0;
    v->out[cls] += c->nblocks - r->nfree;
    return true;
}

static bool check_layout(struct vctx *v, const struct cm_segment *s)
{
    uint64_t starts[CM_SEG_PAGES / 64];
    memset(starts, 0, sizeof starts);
    v->seg = s;
    const struct cm_run *meta = &s->runs[0];
    if (meta->state != CM_RUN_META || meta->order != header_order())
        return fail(v, "run at page 0 (the header): state %u and order %u, expected META and "
                       "order %u",
                    (unsigned)meta->state, (unsigned)meta->order, header_order());
    for (size_t page = 0; page < CM_SEG_PAGES;) {
        const struct cm_run *r = &s->runs[page];
        unsigned order = r->order;
        if (order > CM_MAX_ORDER)
            return fail(v, "run at page %zu: order %u above CM_MAX_ORDER (%u)", page, order,
                        (unsigned)CM_MAX_ORDER);
        if (page & (order_pages(order) - 1))
            return fail(v, "run at page %zu: order %u, but the page is not a multiple of %zu "
                           "(the buddy layout is broken)",
                        page, order, order_pages(order));
        starts[page / 64] |= (uint64_t)1 << (page % 64);
        switch (r->state) {
        case CM_RUN_META:
            if (page != 0)
                return fail(v, "run at page %zu (order %u): state META, which only the header "
                               "run at page 0 has",
                            page, order);
            for (size_t i = 0; i < order_pages(order); i++) {
                if (s->page_cls[i])
                    return fail(v, "header page %zu: page_cls %u, expected 0", i,
                                (unsigned)s->page_cls[i]);
            }
            break;
        case CM_RUN_FREE:
            if (r->cls)
                return fail(v, "free run at page %zu (order %u): class %u, expected 0", page,
                            order, (unsigned)r->cls);
            for (size_t i = page; i < page + order_pages(order); i++) {
                if (s->page_cls[i])
                    return fail(v, "free run at page %zu (order %u): page_cls[%zu] is %u, "
                                   "expected 0",
                                page, order, i, (unsigned)s->page_cls[i]);
            }
            v->free_runs++;
            v->free_pages += order_pages(order);
            v->dirty_pages += r->dirty ? order_pages(order) : 0;
            break;
        case CM_RUN_BLOCKS:
            if (!check_blocks_run(v, s, page, r))
                return false;
            break;
        default:
            return fail(v, "run at page %zu (order %u): state %u is no run state", page, order,
                        (unsigned)r->state);
        }
        page += order_pages(order);
    }
    /* Releasing a run merges it with its free buddy of the same order, up
     * to CM_MAX_ORDER: two such buddies never stay apart. */
    for (size_t page = 0; page < CM_SEG_PAGES; page++) {
        if (!(starts[page / 64] & ((uint64_t)1 << (page % 64))))
            continue;
        const struct cm_run *r = &s->runs[page];
        if (r->state != CM_RUN_FREE || r->order >= CM_MAX_ORDER)
            continue;
        size_t buddy = page ^ order_pages(r->order);
        if (buddy > page && (starts[buddy / 64] & ((uint64_t)1 << (buddy % 64))) &&
            s->runs[buddy].state == CM_RUN_FREE && s->runs[buddy].order == r->order)
            return fail(v, "free runs at pages %zu and %zu are buddies of order %u left "
                           "unmerged",
                        page, buddy, (unsigned)r->order);
    }
    v->seg = NULL;
    return true;
}

/* ---- 6: the bins ---- */

static bool check_bins(struct vctx *v)
{
    struct cm_arena *a = v->a;
    uint64_t bytes = 0;
    for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
        const struct cm_bin *bin = &a->bins[cls];
        const struct cm_run *head = bin->runs;
        struct cycle cy = CYCLE_INIT;
        size_t listed = 0;
        for (const struct cm_run *r = head; r;) {
            size_t page;
            if (!run_desc(v, r, &page))
                return fail(v, "bin %u: entry %p is not a run descriptor in a segment of the "
                               "arena (segment map byte %u)",
                            cls, (const void *)r, cm_segmap_tag((uintptr_t)r));
            v->seg = cm_segment_of(r);
            if (r->state != CM_RUN_BLOCKS || r->cls != cls)
                return fail(v, "run at page %zu is on bin %u but has state %u and class %u",
                            page, cls, (unsigned)r->state, (unsigned)r->cls);
            if (r->nfree == 0)
                return fail(v, "run at page %zu (class %u) is on its bin with nfree 0", page,
                            cls);
            if (!is_run_start(v->seg, page))
                return fail(v, "run at page %zu (class %u) is on its bin but does not start a "
                               "run of the segment's layout",
                            page, cls);
            if (!ring_links_ok(v, r))
                return fail(v, "run at page %zu (class %u) on bin %u: next %p and prev %p are "
                               "not consistent links",
                            page, cls, cls, (void *)r->next, (void *)r->prev);
            v->seg = NULL;
            listed++;
            r = r->next;
            if (r == head)
                break;
            if (cycle_step(&cy, r))
                return fail(v, "bin %u: the run list loops without coming back to its head",
                            cls);
        }
        if (listed != v->with_free[cls])
            return fail(v, "bin %u lists %zu runs but %zu runs of the class have free blocks",
                        cls, listed, v->with_free[cls]);
        if (bin->nruns != v->runs_of[cls])
            return fail(v, "bin %u: nruns %llu but the segments hold %zu runs of the class",
                        cls, (unsigned long long)bin->nruns, v->runs_of[cls]);
        if (bin->nmalloc < bin->nfree || bin->nmalloc - bin->nfree != v->out[cls])
            return fail(v, "bin %u: nmalloc %llu - nfree %llu, but %llu blocks of the class are "
                           "out of its runs",
                        cls, (unsigned long long)bin->nmalloc, (unsigned long long)bin->nfree,
                        (unsigned long long)v->out[cls]);
        bytes += v->out[cls] * cm_classes[cls].size;
    }
    if (a->bytes_out != bytes)
        return fail(v, "bytes_out %zu but the blocks out of the runs hold %llu bytes",
                    a->bytes_out, (unsigned long long)bytes);
    return true;
}

/* ---- 7 and 8: blocks held outside the runs ---- */

/* What is wrong with p as a free block held outside its run (cached, or
 * on a remote list or stack): a format with up to two numbers, or NULL.
 * own: p must be a block of class cls of this arena, and not on its run's
 * free list. Otherwise p must be a block of another core arena, of the
 * class its page says (returned in *cls_out); that arena's lock is not
 * held, but runs with blocks out do not change. */
struct problem {
    const char *fmt;
    unsigned long long x, y;
};

static struct problem block_problem(const struct vctx *v, const void *p, unsigned cls, bool own,
                                    unsigned *cls_out)
{
    uintptr_t x = (uintptr_t)p;
    unsigned tag = cm_segmap_tag(x);
    if (own && tag != v->tag)
        return (struct problem){"is not in a segment of the arena (segment map byte %llu)", tag, 0};
    if (!own && (tag == 0 || tag > CM_MAX_ARENAS))
        return (struct problem){"is not in a heap segment of a core arena (segment map byte %llu)",
                                tag, 0};
    if (!own && tag == v->tag)
        return (struct problem){"belongs to the thread's own arena (segment map byte %llu)", tag, 0};
    const struct cm_segment *s = cm_segment_of(p);
    size_t page = cm_page_index(p);
    unsigned pcls = s->page_cls[page];
    if (own && pcls != cls)
        return (struct problem){"has page_cls %llu, not the class %llu", pcls, cls};
    if (!own && (pcls == 0 || pcls > CM_NCLASSES))
        return (struct problem){"has page_cls %llu, which is no class", pcls, 0};
    cls = pcls;
    *cls_out = cls;
    const struct cm_class *c = &cm_classes[cls];
    const struct cm_run *r = cm_run_of_block((struct cm_segment *)s, p, cls);
    if (r->state != CM_RUN_BLOCKS || r->cls != cls || r->order != c->order)
        return (struct problem){"lies in no BLOCKS run of its class %llu (run state %llu)", cls,
                                r->state};
    uintptr_t base = (uintptr_t)cm_run_base(r), off = x - base;
    if (off % c->size || off >= (uintptr_t)c->nblocks * c->size)
        return (struct problem){"is not a block start (offset %llu in a run of class %llu)", off,
                                cls};
    if (own && off >= (uintptr_t)r->carved * c->size)
        return (struct problem){"was never carved (block %llu, carved %llu)", off / c->size,
                                r->carved};
    if (((const struct cm_block *)p)->free_key != cm_hot.free_key)
        return (struct problem){"lacks the free key", 0, 0};
    if (own) {
        /* The run's free list was checked with its segment; the bound
         * covers a segment the segment map gives the arena that is not on
         * its list, whose runs were not. */
        uint32_t n = 0;
        for (const struct cm_block *b = r->free; b && n <= c->nblocks;
             b = cm_link_decode(b->next_enc), n++) {
            uintptr_t y = (uintptr_t)b;
            if (y < base || y >= base + (uintptr_t)c->nblocks * c->size)
                break;
            if (b == p)
                return (struct problem){"is also on its run's free list (a double free)", 0, 0};
        }
    }
    return (struct problem){NULL, 0, 0};
}

static bool check_tcache_bins(struct vctx *v, const struct cm_tcache *tc)
{
    for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
        unsigned cap = tc->cap[cls], room = tc->room[cls];
        if (!cap) {
            if (room || tc->head[cls] || tc->freed[cls])
                return fail(v, "thread cache %p class %u: disabled (capacity 0) but room %u, "
                               "head %p, freed %p",
                            (const void *)tc, cls, room, (const void *)tc->head[cls],
                            (const void *)tc->freed[cls]);
            continue;
        }
        if (cap > CM_TCACHE_MAX || room > cap)
            return fail(v, "thread cache %p class %u: capacity %u and room %u (at most %u and "
                           "capacity)",
                        (const void *)tc, cls, cap, room, (unsigned)CM_TCACHE_MAX);
        size_t count = cap - room, len = 0;
        for (unsigned list = 0; list < 2; list++) {
            struct cycle cy = CYCLE_INIT;
            const char *name = list ? "freed" : "head";
            size_t first = len;
            for (const struct cm_block *b = list ? tc->freed[cls] : tc->head[cls]; b;
                 b = cm_link_decode(b->next_enc), len++) {
                if (len == count)
                    return fail(v, "thread cache %p class %u: the bin holds more than its count "
                                   "%zu (capacity %u - room %u)",
                                (const void *)tc, cls, count, cap, room);
                unsigned got;
                struct problem pr = block_problem(v, b, cls, true, &got);
                if (pr.fmt) {
                    char text[160];
                    cm_format(text, sizeof text, pr.fmt, pr.x, pr.y);
                    return fail(v, "thread cache %p class %u %s list entry %zu: %p %s",
                                (const void *)tc, cls, name, len - first, (const void *)b, text);
                }
                if (cycle_step(&cy, b))
                    return fail(v, "thread cache %p class %u: the %s list loops",
                                (const void *)tc, cls, name);
            }
        }
        if (len != count)
            return fail(v, "thread cache %p class %u: %zu blocks in the bin, but capacity %u - "
                           "room %u says %zu",
                        (const void *)tc, cls, len, cap, room, count);
        v->held[cls] += count;
    }
    return true;
}

static bool check_remote_list(struct vctx *v, const struct cm_tcache *tc)
{
    uint32_t count[CM_NCLASSES + 1] = {0};
    uint64_t bytes = 0;
    size_t len = 0;
    struct cycle cy = CYCLE_INIT;
    for (const struct cm_block *b = tc->remote; b; b = cm_link_decode(b->next_enc), len++) {
        if (len == tc->remote_blocks)
            return fail(v, "thread cache %p: the remote list is longer than remote_blocks %u",
                        (const void *)tc, tc->remote_blocks);
        unsigned cls = 0;
        struct problem pr = block_problem(v, b, 0, false, &cls);
        if (pr.fmt) {
            char text[160];
            cm_format(text, sizeof text, pr.fmt, pr.x, pr.y);
            return fail(v, "thread cache %p remote list entry %zu: %p %s", (const void *)tc, len,
                        (const void *)b, text);
        }
        count[cls]++;
        bytes += cm_classes[cls].size;
        if (cycle_step(&cy, b))
            return fail(v, "thread cache %p: the remote list loops", (const void *)tc);
    }
    if (len != tc->remote_blocks)
        return fail(v, "thread cache %p: remote_blocks %u but %zu blocks on the remote list",
                    (const void *)tc, tc->remote_blocks, len);
    for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
        if (count[cls] != tc->remote_count[cls])
            return fail(v, "thread cache %p: remote_count[%u] is %u but the remote list holds %u "
                           "blocks of class %u",
                        (const void *)tc, cls, (unsigned)tc->remote_count[cls], count[cls], cls);
    }
    if (bytes != tc->remote_bytes)
        return fail(v, "thread cache %p: remote_bytes %u but the remote list holds %llu bytes",
                    (const void *)tc, tc->remote_bytes, (unsigned long long)bytes);
    return true;
}

static bool check_threads(struct vctx *v)
{
    struct cm_arena *a = v->a;
    unsigned nthreads = __atomic_load_n(&a->nthreads, __ATOMIC_RELAXED);
    struct cycle cy = CYCLE_INIT;
    size_t n = 0;
    const struct cm_tcache *prev = NULL;
    for (const struct cm_tcache *tc = a->threads; tc; prev = tc, tc = tc->next) {
        if (n == nthreads)
            return fail(v, "the thread list is longer than nthreads %u", nthreads);
        if (tc->prev != prev)
            return fail(v, "thread cache %p: prev %p, expected %p", (const void *)tc,
                        (void *)tc->prev, (const void *)prev);
        if (tc->arena != a)
            return fail(v, "thread cache %p: arena pointer %p, expected the arena %p",
                        (const void *)tc, (void *)tc->arena, (void *)a);
        if (tc->state != CM_TC_ACTIVE)
            return fail(v, "thread cache %p: state %u on the arena's thread list, expected "
                           "ACTIVE",
                        (const void *)tc, (unsigned)tc->state);
        if (tc->tag != v->tag && tc->tag != CM_TAG_NONE)
            return fail(v, "thread cache %p: tag %u, expected the arena's %u or none",
                        (const void *)tc, (unsigned)tc->tag, v->tag);
        if (tc->free_key != cm_hot.free_key)
            return fail(v, "thread cache %p: free_key differs from the process's",
                        (const void *)tc);
        if (!check_tcache_bins(v, tc) || !check_remote_list(v, tc))
            return false;
        n++;
        if (cycle_step(&cy, tc->next))
            return fail(v, "the thread list loops");
    }
    return true;
}

static bool check_remote_stacks(struct vctx *v)
{
    struct cm_arena *a = v->a;
    for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
        size_t len = 0;
        struct cycle cy = CYCLE_INIT;
        const struct cm_block *b = __atomic_load_n(&a->remote[cls], __ATOMIC_ACQUIRE);
        for (; b; b = cm_link_decode(b->next_enc), len++) {
            if (v->held[cls] + len >= v->out[cls])
                return fail(v, "class %u: %llu blocks cached and %zu on the remote stack so far, "
                               "but only %llu out of the runs",
                            cls, (unsigned long long)v->held[cls], len + 1,
                            (unsigned long long)v->out[cls]);
            unsigned got;
            struct problem pr = block_problem(v, b, cls, true, &got);
            if (pr.fmt) {
                char text[160];
                cm_format(text, sizeof text, pr.fmt, pr.x, pr.y);
                return fail(v, "remote stack of class %u, entry %zu: %p %s", cls, len,
                            (const void *)b, text);
            }
            if (cycle_step(&cy, b))
                return fail(v, "remote stack of class %u loops", cls);
        }
        v->held[cls] += len;
    }
    for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
        if (v->held[cls] > v->out[cls])
            return fail(v, "class %u: %llu blocks in thread caches and remote stacks but only "
                           "%llu out of the runs",
                        cls, (unsigned long long)v->held[cls], (unsigned long long)v->out[cls]);
    }
    return true;
}

/* ---- the entry points ---- */

static bool validate_arena(struct cm_arena *a, bool extra, unsigned num, bool with_threads,
                           char *why, size_t cap)
{
    struct vctx v;
    memset(&v, 0, sizeof v);
    v.why = why;
    v.cap = cap;
    v.a = a;
    v.tag = a->tag;
    v.kind = extra ? "feature arena" : "arena";
    v.num = num;
    if (!check_arena_fields(&v, extra, num) || !check_segment_list(&v) ||
        !check_free_lists(&v, false))
        return false;
    for (const struct cm_segment *s = a->segments; s; s = s->next) {
        if (!check_layout(&v, s))
            return false;
    }
    if (!check_free_lists(&v, true) || !check_bins(&v))
        return false;
    if (with_threads && (!check_threads(&v) || !check_remote_stacks(&v)))
        return false;
    return true;
}

bool cm_arena_validate_locked(struct cm_arena *a, bool with_threads, char *why, size_t cap)
{
    if (cap)
        why[0] = '\0';
    bool extra = a->index >= CM_MAX_ARENAS;
    return validate_arena(a, extra, extra ? a->index - CM_MAX_ARENAS : a->index, with_threads,
                          why, cap);
}

void cm_debug_check_arena(struct cm_arena *a)
{
    char why[256];
    if (!cm_arena_validate_locked(a, false, why, sizeof why))
        cm_fatal("heap validation failed: %s", why);
}

bool cm_heap_validate(char *why, size_t cap)
{
    if (cap)
        why[0] = '\0';
    if (!__atomic_load_n(&cm_initialized, __ATOMIC_ACQUIRE))
        return true;
    unsigned n = __atomic_load_n(&cm_narenas, __ATOMIC_ACQUIRE);
    if (n > CM_MAX_ARENAS) {
        cm_format(why, cap, "cm_narenas %u above CM_MAX_ARENAS %u", n, (unsigned)CM_MAX_ARENAS);
        return false;
    }
    for (unsigned i = 0; i < n; i++) {
        struct cm_arena *a = cm_arenas[i];
        if (!a) {
            cm_format(why, cap, "arena %u: cm_arenas[%u] is NULL", i, i);
            return false;
        }
        cm_lock(&a->lock);
        bool ok = validate_arena(a, false, i, true, why, cap);
        cm_unlock(&a->lock);
        if (!ok)
            return false;
    }
    if (&cm_nextra_arenas == NULL || cm_extra_arenas == NULL)
        return true;
    unsigned m = cm_nextra_arenas;
    if (m > VALIDATE_MAX_EXTRA) {
        cm_format(why, cap, "cm_nextra_arenas %u above %u", m, (unsigned)VALIDATE_MAX_EXTRA);
        return false;
    }
    for (unsigned i = 0; i < m; i++) {
        struct cm_arena *a = cm_extra_arenas[i];
        if (!a) {
            cm_format(why, cap, "feature arena %u: cm_extra_arenas[%u] is NULL", i, i);
            return false;
        }
        for (unsigned j = 0; j < i; j++) {
            if (cm_extra_arenas[j]->tag == a->tag) {
                cm_format(why, cap, "feature arenas %u and %u share the tag %u", j, i,
                          (unsigned)a->tag);
                return false;
            }
        }
        cm_lock(&a->lock);
        bool ok = validate_arena(a, true, i, true, why, cap);
        cm_unlock(&a->lock);
        if (!ok)
            return false;
    }
    return true;
}

CM_EXPORT int cmalloc_debug_validate(void)
{
    char why[480];
    if (cm_heap_validate(why, sizeof why))
        return 0;
    cm_message("heap validation failed: %s", why);
    return -1;
}

#endif
