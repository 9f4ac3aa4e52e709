/* cmalloc: a drop-in replacement for the glibc malloc family.
 *
 * The malloc family itself (malloc, free, calloc, ...) is declared by
 * <stdlib.h> and <malloc.h>; this header adds cmalloc's own API. */
#ifndef CMALLOC_H
#define CMALLOC_H

#include <stddef.h>
#include <stdio.h>

#define CMALLOC_VERSION_MAJOR 1
#define CMALLOC_VERSION_MINOR 0
#define CMALLOC_VERSION_PATCH 0
#define CMALLOC_VERSION_STRING "1.0.0"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library actually loaded, which may differ from the
 * CMALLOC_VERSION_STRING this program was compiled against. */
const char *cmalloc_version(void);

/* Non-zero when ptr is the start of a live block that cmalloc handed out.
 * Lets a program (or a test) tell whether cmalloc really serves it. A block
 * freed by another thread may still count as live while it waits in that
 * thread's cache. Never crashes on a pointer that is not cmalloc's. */
int cmalloc_owns(const void *ptr);

/* Writes a report of cmalloc's statistics to fp. format "text" (or NULL)
 * is the report of malloc_stats(); "json" is one JSON object on one line,
 * schema "cmalloc-stats" version 1, whose fields cmalloc(7) describes.
 * A NULL fp writes to standard error with write(2), without stdio, like
 * malloc_stats(). Returns 0, or -1 with errno EINVAL for an unknown format
 * (nothing is written then); errors writing to fp are left in ferror(fp). */
int cmalloc_stats_print(FILE *fp, const char *format);

/* ---- Allocation hooks ----
 *
 * A hook is a function cmalloc calls for allocation events: every
 * allocation, or a random sample of them (about one per sample_interval
 * bytes allocated, like jemalloc's and tcmalloc's heap profilers), and the
 * free or realloc of every block whose allocation was reported.
 *
 * Hooks run on the thread that made the call, with no cmalloc lock held.
 * A hook may allocate and free: what it does is never reported to hooks, on
 * any thread's behalf, while it runs. It must not call longjmp or throw.
 * With no hook installed, the cost to malloc and free is one predictable
 * branch each. */

enum cmalloc_event_type {
    CMALLOC_EVENT_ALLOC = 1,  /* ptr was handed out */
    CMALLOC_EVENT_FREE,       /* ptr, reported before, is about to be freed */
    CMALLOC_EVENT_REALLOC,    /* old_ptr, reported before, was moved to ptr */
};

/* The call behind an event. */
enum cmalloc_function {
    CMALLOC_FN_MALLOC = 1,
    CMALLOC_FN_CALLOC,
    CMALLOC_FN_REALLOC,
    CMALLOC_FN_MEMALIGN,  /* memalign, posix_memalign, aligned_alloc, valloc, pvalloc */
    CMALLOC_FN_FREE,      /* free, cfree, free_sized, free_aligned_sized */
};

struct cmalloc_event {
    enum cmalloc_event_type type;
    enum cmalloc_function function;
    void *ptr;          /* the block allocated, or freed */
    size_t size;        /* bytes requested; for FREE, the usable size */
    size_t usable;      /* malloc_usable_size(ptr) */
    size_t alignment;   /* alignment requested, 0 for none */
    void *old_ptr;      /* REALLOC: the block that was replaced (freed) */
    size_t old_usable;  /* REALLOC: its usable size */
    /* Bytes of allocation this event stands for: size when every
     * allocation is reported, more when this one was sampled (an estimate
     * that makes sums of weights unbiased). */
    size_t weight;
};

typedef void (*cmalloc_hook_fn)(const struct cmalloc_event *event, void *arg);

#define CMALLOC_MAX_HOOKS 8

/* Installs fn (called with arg). sample_interval 0 reports every
 * allocation; N reports about one per N bytes allocated, chosen at random.
 * All installed hooks share one interval. Allocations made before the hook
 * is installed are not reported, but their frees may be when another hook
 * saw them: a hook should ignore pointers it does not know.
 * Returns 0, or EINVAL (fn is NULL), EEXIST (fn with arg is installed
 * already), EBUSY (other hooks use another interval) or ENOSPC
 * (CMALLOC_MAX_HOOKS are installed). */
int cmalloc_hook_install(cmalloc_hook_fn fn, void *arg, size_t sample_interval);

/* Removes the hook installed with fn and arg, and waits until no other
 * thread is running it. Returns 0, or ENOENT if it is not installed. */
int cmalloc_hook_remove(cmalloc_hook_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif
