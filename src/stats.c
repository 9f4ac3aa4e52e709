/* Statistics: malloc_stats, mallinfo/mallinfo2, malloc_info and
 * cmalloc_stats_print (text or JSON), at exit and on a signal.
 *
 * The fast paths count one thing only: the bytes each thread asks malloc
 * for, in the countdown malloc keeps anyway (tcache.c). Everything else is counted
 * where a lock is held anyway: a bin counts the blocks it hands out of its
 * runs and gets back, to and from thread caches or users, so blocks in use
 * = handed out - given back - held in caches, worked out when asked, and
 * the per-class counts are of blocks passing between arenas and caches, not
 * of malloc calls. Blocks in a thread cache are counted as free in the arena
 * of the caching thread, which keeps the totals exact even when a cache
 * holds blocks of another arena. os.c counts what is held from the kernel,
 * large.c the huge blocks.
 *
 * Other threads' cache counters are read without their owners' help; the
 * figures are exact whenever those threads are not allocating at the time.
 *
 * Each arena is copied into a snapshot under its lock, and printing happens
 * after the lock is released: a FILE may allocate. A report made from a
 * signal handler must not wait for a lock the interrupted thread may hold:
 * it tries each lock for a while and otherwise reads the arena's counters
 * without it, leaving out what only the lock makes safe to read (the lists
 * of free runs and of threads), and says so. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Tries a signal report makes for an arena lock before it reads without. */
#define CM_SIGNAL_LOCK_TRIES 100

#define CM_JSON_SCHEMA "cmalloc-stats"
#define CM_JSON_SCHEMA_VERSION 1

struct class_snapshot {
    size_t runs;
    size_t in_use;  /* blocks */
    size_t free;    /* blocks */
    uint64_t nmalloc, nfree;
};

struct arena_snapshot {
    bool traced;
    bool exact;           /* read under the lock */
    unsigned threads;
    size_t segments, segments_peak;
    size_t in_use;        /* bytes in blocks handed out, less those cached */
    size_t out, out_peak; /* bytes in blocks handed out of runs */
    size_t free_runs;     /* counted only when exact */
    size_t free_pages;
    size_t dirty_pages;
    uint64_t requested;
    uint64_t nmalloc, nfree;
    struct class_snapshot classes[CM_NCLASSES + 1];
};

/* For fields that other threads may be writing: thread caches' counters
 * always, and the arena's when a signal report could not get its lock. */
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

/* Called under the arena lock as the thread leaves the arena's list, so a
 * report counts its bytes exactly once. */
void cm_stats_thread_exit(struct cm_arena *a, struct cm_tcache *tc)
{
    a->requested += cm_tcache_requested(tc);
    tc->requested_base = tc->countdown;
}

static bool lock_arena(struct cm_arena *a, bool from_signal)
{
    if (!from_signal)
        return cm_lock_live(&a->lock);
    for (int i = 0; i < CM_SIGNAL_LOCK_TRIES; i++) {
        if (cm_trylock(&a->lock))
            return true;
        sched_yield();
    }
    return false;
}

static void snapshot_arena(struct cm_arena *a, struct arena_snapshot *snap, bool from_signal)
{
    memset(snap, 0, sizeof *snap);
    bool locked = lock_arena(a, from_signal);
    if (locked)
        cm_arena_collect_remote(a);
    snap->traced = a->tag >= CM_TAG_EXTRA_FIRST;
    snap->exact = locked;
    snap->threads = LOAD(a->nthreads);
    snap->segments = LOAD(a->nsegments);
    snap->segments_peak = LOAD(a->nsegments_peak);
    snap->out = LOAD(a->bytes_out);
    snap->out_peak = LOAD(a->bytes_out_peak);
    snap->free_pages = LOAD(a->free_pages);
    snap->dirty_pages = LOAD(a->dirty_pages);
    snap->requested = LOAD(a->requested);
    if (locked) {
        for (unsigned o = 0; o <= CM_MAX_ORDER; o++) {
            for (int clean = 0; clean < 2; clean++) {
                struct cm_run *head = clean ? a->clean_runs[o] : a->dirty_runs[o];
                for (struct cm_run *r = head; r; r = r->next == head ? NULL : r->next)
                    snap->free_runs++;
            }
        }
        for (const struct cm_tcache *tc = a->threads; tc; tc = tc->next)
            snap->requested += cm_tcache_requested(tc);
    }
    size_t quarantined[CM_NCLASSES + 1] = {0};
    if (cm_ext.held_blocks)
        cm_ext.held_blocks(a, quarantined, from_signal);
    for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
        struct cm_bin *bin = &a->bins[cls];
        struct class_snapshot *c = &snap->classes[cls];
        size_t cached = quarantined[cls];
        if (locked) {
            for (const struct cm_tcache *tc = a->threads; tc; tc = tc->next)
                cached += (uint16_t)(LOAD(tc->cap[cls]) - LOAD(tc->room[cls])) +
                          LOAD(tc->remote_count[cls]);
        }
        c->runs = LOAD(bin->nruns);
        c->nmalloc = LOAD(bin->nmalloc);
        c->nfree = LOAD(bin->nfree);
        size_t out = c->nmalloc > c->nfree ? c->nmalloc - c->nfree : 0;
        size_t capacity = c->runs * cm_classes[cls].nblocks;
        c->in_use = out > cached ? out - cached : 0;
        c->free = capacity > c->in_use ? capacity - c->in_use : 0;
        snap->in_use += c->in_use * cm_classes[cls].size;
        snap->nmalloc += c->nmalloc;
        snap->nfree += c->nfree;
    }
    if (locked)
        cm_unlock(&a->lock);
}

static void add_classes(struct class_snapshot *sum, const struct arena_snapshot *snap)
{
    for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
        sum[cls].runs += snap->classes[cls].runs;
        sum[cls].in_use += snap->classes[cls].in_use;
        sum[cls].free += snap->classes[cls].free;
        sum[cls].nmalloc += snap->classes[cls].nmalloc;
        sum[cls].nfree += snap->classes[cls].nfree;
    }
}

static bool class_seen(const struct class_snapshot *c)
{
    return c->runs || c->nmalloc;
}

/* The arenas a report covers: cm_arenas[0..n) and then the features'
 * arenas that have ever held memory, whose blocks are in use too. */
static struct cm_arena *arena_at(unsigned i)
{
    unsigned n = __atomic_load_n(&cm_narenas, __ATOMIC_ACQUIRE);
    if (i < n)
        return cm_arenas[i];
    for (unsigned k = 0; k < cm_nextra_arenas; k++) {
        if (LOAD(cm_extra_arenas[k]->nsegments_peak) && i-- == n)
            return cm_extra_arenas[k];
    }
    return NULL;
}

/* What a feature's arena holds, in the words it registered. */
static const char *extra_arena_name(const struct cm_arena *a)
{
    return cm_extra_arena_names[a->index - CM_MAX_ARENAS];
}

/* An emitter formats one piece at a time and collects the pieces in a
 * buffer that it hands to a sink when full: a file descriptor (write(2)
 * only, so it is safe in a signal handler and never allocates) or a FILE. */
struct emitter {
    void (*sink)(void *ctx, const char *s, size_t n);
    void *ctx;
    size_t len;
    char buf[2048];
};

static void flush(struct emitter *e)
{
    if (e->len)
        e->sink(e->ctx, e->buf, e->len);
    e->len = 0;
}

static void emit(struct emitter *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(struct emitter *e, const char *fmt, ...)
{
    char piece[512];
    va_list ap;
    va_start(ap, fmt);
    size_t n = cm_vformat(piece, sizeof piece, fmt, ap);
    va_end(ap);
    if (n >= sizeof piece)
        n = sizeof piece - 1;
    if (e->len + n > sizeof e->buf)
        flush(e);
    memcpy(e->buf + e->len, piece, n);
    e->len += n;
}

static void fd_sink(void *ctx, const char *s, size_t n)
{
    cm_prim_write(*(int *)ctx, s, n);
}

static void file_sink(void *ctx, const char *s, size_t n)
{
    fwrite(s, 1, n, (FILE *)ctx);
}

/* ---- text: malloc_stats ---- */

static void print_text(struct emitter *e, bool from_signal)
{
    struct arena_snapshot snap;
    struct class_snapshot classes[CM_NCLASSES + 1];
    size_t system = 0, in_use = 0;
    unsigned threads = 0, narenas = 0, inexact = 0;
    uint64_t requested = 0;
    struct cm_arena *a;

    memset(classes, 0, sizeof classes);
    for (unsigned i = 0; (a = arena_at(i)); i++) {
        snapshot_arena(a, &snap, from_signal);
        if (snap.traced)
            emit(e, "Arena %u (%s):\n", i, extra_arena_name(a));
        else
            emit(e, "Arena %u:\n", i);
        emit(e, "system bytes     = %10zu\n", snap.segments * CM_SEG_SIZE);
        emit(e, "in use bytes     = %10zu\n", snap.in_use);
        system += snap.segments * CM_SEG_SIZE;
        in_use += snap.in_use;
        threads += snap.threads;
        requested += snap.requested;
        inexact += !snap.exact;
        narenas += !snap.traced;
        add_classes(classes, &snap);
    }
    struct cm_huge_stats huge;
    struct cm_os_stats os;
    cm_huge_stats_get(&huge);
    cm_os_stats_get(&os);
    size_t cached = cm_huge_cached_bytes();
    emit(e, "Total (incl. mmap):\n");
    emit(e, "system bytes     = %10zu\n", system + huge.bytes + cached);
    emit(e, "in use bytes     = %10zu\n", in_use + huge.bytes);
    emit(e, "max mmap regions = %10zu\n", huge.max_count);
    emit(e, "max mmap bytes   = %10zu\n", huge.max_bytes);
    emit(e, "%s: %u arenas, %u threads, %zu mmap regions, %zu bytes of freed mappings cached\n",
         CMALLOC_VERSION_TEXT, narenas, threads, huge.count, cached);
    emit(e, "requested bytes  = %10llu\n", (unsigned long long)requested);
    emit(e, "held from OS     = %10zu bytes, at most %zu\n", os.held, os.held_peak);
    emit(e, "returned to OS   = %10llu bytes: %llu purged, %llu unmapped\n",
         (unsigned long long)(os.purged + os.unmapped), (unsigned long long)os.purged,
         (unsigned long long)os.unmapped);
    if (inexact)
        emit(e, "(%u arenas were busy and were read without their locks: their in-use "
                "figures include blocks in thread caches)\n", inexact);
    emit(e, " bin  block size     in use       free       runs      taken   returned\n");
    for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
        const struct class_snapshot *c = &classes[cls];
        if (class_seen(c))
            emit(e, "%4u %11u %10zu %10zu %10zu %10llu %10llu\n", cls, cm_classes[cls].size,
                 c->in_use, c->free, c->runs, (unsigned long long)c->nmalloc,
                 (unsigned long long)c->nfree);
    }
}

/* ---- JSON: one object on one line (see README.md, "Statistics") ---- */

static const char *json_bool(bool b)
{
    return b ? "true" : "false";
}

static void json_class(struct emitter *e, unsigned cls, const struct class_snapshot *c,
                       bool first, bool with_bytes)
{
    emit(e, "%s{\"class\":%u,\"size\":%u,\"runs\":%zu,\"blocks_in_use\":%zu,\"blocks_free\":%zu,"
            "\"nmalloc\":%llu,\"nfree\":%llu",
         first ? "" : ",", cls, cm_classes[cls].size, c->runs, c->in_use, c->free,
         (unsigned long long)c->nmalloc, (unsigned long long)c->nfree);
    if (with_bytes)
        emit(e, ",\"bytes_in_use\":%zu", c->in_use * cm_classes[cls].size);
    emit(e, "}");
}

static void json_requested(struct emitter *e, const char *key, uint64_t v)
{
    emit(e, ",\"%s\":%llu", key, (unsigned long long)v);
}

static void print_json(struct emitter *e, bool from_signal)
{
    struct arena_snapshot snap;
    struct class_snapshot classes[CM_NCLASSES + 1];
    size_t in_use = 0;
    unsigned threads = 0, narenas = 0;
    uint64_t requested = 0;
    bool exact = true;
    struct cm_arena *a;

    memset(classes, 0, sizeof classes);
    emit(e, "{\"schema\":\"%s\",\"schema_version\":%d,\"version\":\"%s\",\"pid\":%d,\"arenas\":[",
         CM_JSON_SCHEMA, CM_JSON_SCHEMA_VERSION, CMALLOC_VERSION_STRING, cm_prim_getpid());
    for (unsigned i = 0; (a = arena_at(i)); i++) {
        snapshot_arena(a, &snap, from_signal);
        emit(e, "%s{\"index\":%u,\"traced\":%s,\"exact\":%s,\"threads\":%u,\"segments\":%zu,"
                "\"segments_peak\":%zu,\"bytes_held\":%zu,\"bytes_held_peak\":%zu",
             i ? "," : "", i, json_bool(snap.traced), json_bool(snap.exact), snap.threads,
             snap.segments, snap.segments_peak, snap.segments * CM_SEG_SIZE,
             snap.segments_peak * CM_SEG_SIZE);
        emit(e, ",\"bytes_in_use\":%zu,\"bytes_out\":%zu,\"bytes_out_peak\":%zu,"
                "\"bytes_free_pages\":%zu,\"bytes_dirty_pages\":%zu",
             snap.in_use, snap.out, snap.out_peak, snap.free_pages << CM_PAGE_SHIFT,
             snap.dirty_pages << CM_PAGE_SHIFT);
        if (snap.exact)
            emit(e, ",\"free_runs\":%zu", snap.free_runs);
        else
            emit(e, ",\"free_runs\":null");
        json_requested(e, "bytes_requested", snap.requested);
        emit(e, ",\"nmalloc\":%llu,\"nfree\":%llu,\"classes\":[",
             (unsigned long long)snap.nmalloc, (unsigned long long)snap.nfree);
        bool first = true;
        for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
            if (class_seen(&snap.classes[cls])) {
                json_class(e, cls, &snap.classes[cls], first, false);
                first = false;
            }
        }
        emit(e, "]}");
        in_use += snap.in_use;
        threads += snap.threads;
        requested += snap.requested;
        exact &= snap.exact;
        narenas += !snap.traced;
        add_classes(classes, &snap);
    }
    emit(e, "],\"classes\":[");
    bool first = true;
    for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
        if (class_seen(&classes[cls])) {
            json_class(e, cls, &classes[cls], first, true);
            first = false;
        }
    }
    struct cm_huge_stats huge;
    struct cm_os_stats os;
    cm_huge_stats_get(&huge);
    cm_os_stats_get(&os);
    emit(e, "],\"huge\":{\"count\":%zu,\"bytes\":%zu,\"count_peak\":%zu,\"bytes_peak\":%zu,"
            "\"bytes_cached\":%zu}",
         huge.count, huge.bytes, huge.max_count, huge.max_bytes, cm_huge_cached_bytes());
    emit(e, ",\"os\":{\"bytes_held\":%zu,\"bytes_held_peak\":%zu,\"bytes_mapped\":%llu,"
            "\"bytes_unmapped\":%llu,\"bytes_purged\":%llu,\"bytes_returned\":%llu}",
         os.held, os.held_peak, (unsigned long long)os.mapped, (unsigned long long)os.unmapped,
         (unsigned long long)os.purged, (unsigned long long)(os.unmapped + os.purged));
    emit(e, ",\"totals\":{\"arenas\":%u,\"threads\":%u,\"exact\":%s", narenas, threads,
         json_bool(exact));
    json_requested(e, "bytes_requested", requested);
    emit(e, ",\"bytes_in_use\":%zu,\"bytes_held\":%zu,\"bytes_held_peak\":%zu,"
            "\"bytes_returned\":%llu}}\n",
         in_use + huge.bytes, os.held, os.held_peak,
         (unsigned long long)(os.unmapped + os.purged));
}

static void report(struct emitter *e, int format, bool from_signal)
{
    if (format == CM_STATS_JSON)
        print_json(e, from_signal);
    else
        print_text(e, from_signal);
    flush(e);
}

void cm_stats_report_fd(int fd, int format, bool from_signal)
{
    /* Two threads taking the signal at once would interleave their lines. */
    static int signal_report_running;
    if (from_signal && __atomic_exchange_n(&signal_report_running, 1, __ATOMIC_ACQUIRE))
        return;
    if (!from_signal)
        cm_ensure_init();
    int cancel = cm_prim_cancel_off();
    struct emitter e = {.sink = fd_sink, .ctx = &fd};
    report(&e, format, from_signal);
    cm_prim_cancel_restore(cancel);
    if (from_signal)
        __atomic_store_n(&signal_report_running, 0, __ATOMIC_RELEASE);
}

void cm_stats_print_fd(int fd)
{
    cm_stats_report_fd(fd, CM_STATS_TEXT, false);
}

CM_EXPORT int cmalloc_stats_print(FILE *fp, const char *format)
{
    int f;
    if (!format || strcmp(format, "text") == 0) {
        f = CM_STATS_TEXT;
    } else if (strcmp(format, "json") == 0) {
        f = CM_STATS_JSON;
    } else {
        errno = EINVAL;
        return -1;
    }
    if (!fp) {
        cm_stats_report_fd(STDERR_FILENO, f, false);
        return 0;
    }
    cm_ensure_init();
    int cancel = cm_prim_cancel_off();
    struct emitter e = {.sink = file_sink, .ctx = fp};
    report(&e, f, false);
    cm_prim_cancel_restore(cancel);
    return 0;
}

/* ---- mallinfo2 and malloc_info ---- */

struct cm_totals {
    size_t system, in_use, free_runs;
    struct cm_huge_stats huge;
};

static void totals(struct cm_totals *t)
{
    struct arena_snapshot snap;
    struct cm_arena *a;
    memset(t, 0, sizeof *t);
    cm_ensure_init();
    for (unsigned i = 0; (a = arena_at(i)); i++) {
        snapshot_arena(a, &snap, false);
        t->system += snap.segments * CM_SEG_SIZE;
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
    struct emitter e = {.sink = file_sink, .ctx = fp};
    struct arena_snapshot snap;
    size_t system = 0, system_max = 0, free_bytes = 0, free_count = 0;
    struct cm_arena *a;

    cm_ensure_init();
    int cancel = cm_prim_cancel_off();
    emit(&e, "<malloc version=\"1\">\n");
    for (unsigned i = 0; (a = arena_at(i)); i++) {
        snapshot_arena(a, &snap, false);
        size_t arena_free = 0, arena_count_free = 0;
        size_t held = snap.segments * CM_SEG_SIZE, held_max = snap.segments_peak * CM_SEG_SIZE;
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
        emit(&e, "<system type=\"current\" size=\"%zu\"/>\n", held);
        emit(&e, "<system type=\"max\" size=\"%zu\"/>\n", held_max);
        emit(&e, "<aspace type=\"total\" size=\"%zu\"/>\n", held);
        emit(&e, "<aspace type=\"mprotect\" size=\"%zu\"/>\n", held);
        emit(&e, "</heap>\n");
        system += held;
        system_max += held_max;
        free_bytes += arena_free + run_free;
        free_count += arena_count_free + snap.free_runs;
    }
    struct cm_huge_stats huge;
    cm_huge_stats_get(&huge);
    emit(&e, "<total type=\"fast\" count=\"0\" size=\"0\"/>\n");
    emit(&e, "<total type=\"rest\" count=\"%zu\" size=\"%zu\"/>\n", free_count, free_bytes);
    emit(&e, "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n", huge.count, huge.bytes);
    emit(&e, "<system type=\"current\" size=\"%zu\"/>\n", system + huge.bytes);
    emit(&e, "<system type=\"max\" size=\"%zu\"/>\n", system_max + huge.max_bytes);
    emit(&e, "<aspace type=\"total\" size=\"%zu\"/>\n", system + huge.bytes);
    emit(&e, "<aspace type=\"mprotect\" size=\"%zu\"/>\n", system + huge.bytes);
    emit(&e, "</malloc>\n");
    flush(&e);
    cm_prim_cancel_restore(cancel);
    return 0;
}
