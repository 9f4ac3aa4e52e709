/* Statistics: malloc_stats, mallinfo/mallinfo2 and malloc_info.
 *
 * Nothing is counted on the fast paths. A bin knows how many blocks it has
 * handed out of its runs; a thread cache knows how many blocks it holds. So
 * blocks in use = handed out - held in caches, worked out when asked. Blocks
 * in a thread cache are counted as free in the arena of the caching thread,
 * which keeps the totals exact even when a cache holds blocks of another
 * arena.
 *
 * Other threads' cache counters are read without their owners' help; the
 * figures are exact whenever those threads are not allocating at the time.
 *
 * Each arena is copied into a snapshot under its lock, and printing happens
 * after the lock is released: malloc_info writes to a FILE, which may
 * allocate. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

struct class_snapshot {
    size_t in_use;  /* blocks */
    size_t free;    /* blocks */
};

struct arena_snapshot {
    size_t system;      /* bytes of heap segments */
    size_t in_use;      /* bytes in blocks handed out */
    size_t free_runs;
    size_t free_pages;
    size_t dirty_pages;
    unsigned threads;
    struct class_snapshot classes[CM_NCLASSES + 1];
};

static void snapshot_arena(struct cm_arena *a, struct arena_snapshot *snap)
{
    memset(snap, 0, sizeof *snap);
    cm_lock(&a->lock);
    snap->system = a->nsegments * CM_SEG_SIZE;
    snap->free_pages = a->free_pages;
    snap->dirty_pages = a->dirty_pages;
    snap->threads = __atomic_load_n(&a->nthreads, __ATOMIC_RELAXED);
    for (unsigned o = 0; o <= CM_MAX_ORDER; o++) {
        struct cm_run *head = a->free_runs[o];
        if (!head)
            continue;
        struct cm_run *r = head;
        do {
            snap->free_runs++;
            r = r->next;
        } while (r != head);
    }
    for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
        const struct cm_bin *bin = &a->bins[cls];
        size_t cached = 0;
        for (const struct cm_tcache *tc = a->threads; tc; tc = tc->next)
            cached += __atomic_load_n(&tc->bins[cls].max, __ATOMIC_RELAXED) -
                      __atomic_load_n(&tc->bins[cls].avail, __ATOMIC_RELAXED);
        size_t capacity = bin->nruns * cm_classes[cls].nblocks;
        size_t in_use = bin->out > cached ? bin->out - cached : 0;
        snap->classes[cls].in_use = in_use;
        snap->classes[cls].free = capacity - in_use;
        snap->in_use += in_use * cm_classes[cls].size;
    }
    cm_unlock(&a->lock);
}

/* An emitter formats one line at a time into a stack buffer and hands it to
 * a sink: a file descriptor (never allocates) or a FILE (for malloc_info). */
struct emitter {
    void (*sink)(void *ctx, const char *s, size_t n);
    void *ctx;
};

static void emit(struct emitter *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(struct emitter *e, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    size_t n = cm_vformat(line, sizeof line, fmt, ap);
    va_end(ap);
    e->sink(e->ctx, line, n < sizeof line ? n : sizeof line - 1);
}

static void fd_sink(void *ctx, const char *s, size_t n)
{
    cm_write_fd(*(int *)ctx, s, n);
}

static void file_sink(void *ctx, const char *s, size_t n)
{
    fwrite(s, 1, n, (FILE *)ctx);
}

static unsigned arena_count(void)
{
    return __atomic_load_n(&cm_narenas, __ATOMIC_ACQUIRE);
}

void cm_stats_print_fd(int fd)
{
    struct emitter e = {fd_sink, &fd};
    struct arena_snapshot snap;
    struct class_snapshot classes[CM_NCLASSES + 1];
    size_t system = 0, in_use = 0;
    unsigned threads = 0, narenas = arena_count();

    cm_ensure_init();
    memset(classes, 0, sizeof classes);
    for (unsigned i = 0; i < narenas; i++) {
        snapshot_arena(cm_arenas[i], &snap);
        emit(&e, "Arena %u:\n", i);
        emit(&e, "system bytes     = %10zu\n", snap.system);
        emit(&e, "in use bytes     = %10zu\n", snap.in_use);
        system += snap.system;
        in_use += snap.in_use;
        threads += snap.threads;
        for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
            classes[cls].in_use += snap.classes[cls].in_use;
            classes[cls].free += snap.classes[cls].free;
        }
    }
    struct cm_huge_stats huge;
    cm_huge_stats_get(&huge);
    size_t cached = cm_huge_cached_bytes();
    emit(&e, "Total (incl. mmap):\n");
    emit(&e, "system bytes     = %10zu\n", system + huge.bytes + cached);
    emit(&e, "in use bytes     = %10zu\n", in_use + huge.bytes);
    emit(&e, "max mmap regions = %10zu\n", huge.max_count);
    emit(&e, "max mmap bytes   = %10zu\n", huge.max_bytes);
    emit(&e, "%s: %u arenas, %u threads, %zu mmap regions, %zu bytes of freed mappings cached\n",
         CMALLOC_VERSION_TEXT, narenas, threads, huge.count, cached);
    emit(&e, " bin  block size     in use       free\n");
    for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
        if (classes[cls].in_use || classes[cls].free)
            emit(&e, "%4u %11u %10zu %10zu\n", cls, cm_classes[cls].size, classes[cls].in_use,
                 classes[cls].free);
    }
}

struct cm_totals {
    size_t system, in_use, free_runs;
    struct cm_huge_stats huge;
};

static void totals(struct cm_totals *t)
{
    struct arena_snapshot snap;
    memset(t, 0, sizeof *t);
    cm_ensure_init();
    for (unsigned i = 0, n = arena_count(); i < n; i++) {
        snapshot_arena(cm_arenas[i], &snap);
        t->system += snap.system;
        t->in_use += snap.in_use;
        t->free_runs += snap.free_runs;
    }
    cm_huge_stats_get(&t->huge);
}

struct mallinfo2 cm_stats_mallinfo2(void)
{
    struct cm_totals t;
    totals(&t);
    struct mallinfo2 mi = {
        .arena = t.system,
        .ordblks = t.free_runs,
        .hblks = t.huge.count,
        .hblkhd = t.huge.bytes,
        .uordblks = t.in_use,
        .fordblks = t.system - t.in_use,
    };
    return mi;
}

int cm_stats_malloc_info(int options, FILE *fp)
{
    /* glibc returns the error itself rather than -1 with errno set. */
    if (options != 0)
        return EINVAL;
    struct emitter e = {file_sink, fp};
    struct arena_snapshot snap;
    size_t system = 0, free_bytes = 0, free_count = 0;
    unsigned narenas = arena_count();

    cm_ensure_init();
    emit(&e, "<malloc version=\"1\">\n");
    for (unsigned i = 0; i < narenas; i++) {
        snapshot_arena(cm_arenas[i], &snap);
        size_t arena_free = 0, arena_count_free = 0;
        emit(&e, "<heap nr=\"%u\">\n<sizes>\n", i);
        for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
            size_t n = snap.classes[cls].free;
            if (!n)
                continue;
            size_t size = cm_classes[cls].size;
            size_t from = cls == 1 ? 1 : cm_classes[cls - 1].size + 1;
            emit(&e, "  <size from=\"%zu\" to=\"%zu\" total=\"%zu\" count=\"%zu\"/>\n", from,
                 size, n * size, n);
            arena_free += n * size;
            arena_count_free += n;
        }
        size_t run_free = snap.free_pages << CM_PAGE_SHIFT;
        emit(&e, "</sizes>\n");
        emit(&e, "<total type=\"fast\" count=\"0\" size=\"0\"/>\n");
        emit(&e, "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n",
             arena_count_free + snap.free_runs, arena_free + run_free);
        emit(&e, "<system type=\"current\" size=\"%zu\"/>\n", snap.system);
        emit(&e, "<system type=\"max\" size=\"%zu\"/>\n", snap.system);
        emit(&e, "<aspace type=\"total\" size=\"%zu\"/>\n", snap.system);
        emit(&e, "<aspace type=\"mprotect\" size=\"%zu\"/>\n", snap.system);
        emit(&e, "</heap>\n");
        system += snap.system;
        free_bytes += arena_free + run_free;
        free_count += arena_count_free + snap.free_runs;
    }
    struct cm_huge_stats huge;
    cm_huge_stats_get(&huge);
    emit(&e, "<total type=\"fast\" count=\"0\" size=\"0\"/>\n");
    emit(&e, "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n", free_count, free_bytes);
    emit(&e, "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n", huge.count, huge.bytes);
    emit(&e, "<system type=\"current\" size=\"%zu\"/>\n", system + huge.bytes);
    emit(&e, "<system type=\"max\" size=\"%zu\"/>\n", system + huge.max_bytes);
    emit(&e, "<aspace type=\"total\" size=\"%zu\"/>\n", system + huge.bytes);
    emit(&e, "<aspace type=\"mprotect\" size=\"%zu\"/>\n", system + huge.bytes);
    emit(&e, "</malloc>\n");
    return 0;
}
