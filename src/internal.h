/* Internal interface of cmalloc: the globals, the functions each file offers
 * the others, and the fast paths as static inline functions. Everything here
 * is hidden; the few exported functions are marked CM_EXPORT. */
#ifndef CM_INTERNAL_H
#define CM_INTERNAL_H

#include <malloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cmalloc.h"
#include "prim.h"
#include "seam.h"
#include "sizeclass.h"
#include "types.h"

/* Everything declared below is internal: telling the compiler so lets it
 * reach globals directly instead of through the GOT. */
#pragma GCC visibility push(hidden)

#define cm_likely(x) __builtin_expect(!!(x), 1)
#define cm_unlikely(x) __builtin_expect(!!(x), 0)
#define CM_NOINLINE __attribute__((noinline))
#define CM_COLD __attribute__((cold, noinline))
#define CM_EXPORT __attribute__((visibility("default")))

/* Core arenas' tags (types.h) stay below the features' tags. */
#define CM_MAX_ARENAS 224
_Static_assert(CM_MAX_ARENAS < CM_TAG_EXTRA_FIRST, "arena tags overlap the features' tags");

#define CMALLOC_VERSION_TEXT "cmalloc " CMALLOC_VERSION_STRING

/* ---- options.c: settings, from the environment and mallopt ---- */
enum cm_stats_format { CM_STATS_NONE = 0, CM_STATS_TEXT, CM_STATS_JSON };

struct cm_options {
    size_t mmap_threshold;   /* requests of this size or more go to mmap */
    size_t trim_threshold;   /* dirty free bytes an arena keeps before purging */
    size_t tcache_max_size;  /* largest class kept in thread caches; 0 = off */
    unsigned arena_max;      /* 0 = one per online CPU */
    size_t purge_delay_ms;   /* how long free memory stays before it is purged */
    int background_purge;    /* a thread purges (background.c) */
    int stats_at_exit;       /* enum cm_stats_format */
    int stats_signal;        /* signal that prints the stats; 0 = none */
    int verbose;
    int hardened;            /* read at start-up only: see cm_guard_init */
    int mmap_max;            /* mallopt M_MMAP_MAX: huge blocks at most */
};

extern struct cm_options cm_opt;
void cm_options_read(void);
int cm_options_mallopt(int param, int value);

/* ---- sizeclass.c: the generated class table ---- */
/* The most blocks a thread-cache bin holds, whatever the options. */
#define CM_TCACHE_MAX 128
struct cm_class {
    uint32_t size;
    uint32_t nblocks;       /* blocks in one run */
    uint8_t order;          /* run size: 2^order pages */
    uint32_t tcache_max;    /* thread-cache capacity; 0 = not cached */
    uint32_t tcache_start;  /* capacity of a new thread's bin, which grows */
    /* One-block runs: how many empty ones a bin keeps for the next malloc
     * of the class instead of giving them back to the buddy system. */
    uint32_t keep_empty;
};

/* Read on every malloc and free: one base address for all of it. free()
 * tells a block start of class cls from any other address in a run of that
 * class with one multiply (cm_is_block_start); the segment map comes last,
 * as it is 32 MiB of address space on 64-bit targets (1 KiB on 32-bit
 * ones), of which only the pages for granules we use are ever touched. */
#define CM_SEGMAP_SIZE ((size_t)1 << (CM_ADDR_BITS - CM_SEG_SHIFT))

struct cm_hot {
    uint64_t div_magic[CM_NCLASSES + 1];
    uint64_t div_limit[CM_NCLASSES + 1];
    uint32_t run_mask[CM_NCLASSES + 1];   /* run size - 1: runs are aligned to their size */
    uintptr_t link_secret;  /* XORed into free-list links */
    uintptr_t free_key;     /* stored in every free block */
    uint8_t ext;            /* enum cm_ext_mode (seam.h) */
    /* Class of a request of n bytes, n <= CM_LOOKUP_MAX; 0 for n = 0,
     * whose bin is always disabled (see cm_alloc_slow). */
    uint8_t class_of[CM_LOOKUP_MAX + 1];
    /* Class of n bytes, CM_LOOKUP_MAX < n <= CM_LOOKUP2_MAX, by
     * (n + 255) >> CM_LOOKUP2_SHIFT. */
    uint8_t class_of_medium[(CM_LOOKUP2_MAX >> CM_LOOKUP2_SHIFT) + 1];
    _Alignas(4096) uint8_t segmap[CM_SEGMAP_SIZE];
};

extern struct cm_hot cm_hot;
extern struct cm_class cm_classes[CM_NCLASSES + 1];
void cm_sizeclass_init(void);

static inline unsigned cm_size_class(size_t n)
{
    if (cm_likely(n <= CM_LOOKUP_MAX))
        return n ? cm_hot.class_of[n] : 1;
    if (n <= CM_LOOKUP2_MAX)
        return cm_hot.class_of_medium[(n + (1u << CM_LOOKUP2_SHIFT) - 1) >> CM_LOOKUP2_SHIFT];
    size_t m = n - 1;
    unsigned k = (unsigned)(8 * sizeof m - 1) - (unsigned)__builtin_clzl(m);
    return CM_TINY_CLASSES + 1 + (k - 7) * 4 + (unsigned)((m >> (k - 2)) & 3);
}

/* ---- format.c: formatting and messages without allocating or stdio ---- */
size_t cm_format(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t cm_vformat(char *buf, size_t cap, const char *fmt, va_list ap);
void cm_message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void cm_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* xorshift64*: the next number of a per-thread generator whose state is
 * *state, started from seed (odd) the first time. */
static inline uint64_t cm_random_next(uint64_t *state, uint64_t seed)
{
    uint64_t x = *state ? *state : seed | 1;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* ---- os.c: the only seam to the kernel (sbrk, mmap, madvise) ---- */
void *cm_os_map(size_t size);
void *cm_os_map_aligned(size_t size, size_t align);
void cm_os_unmap(void *p, size_t size);
void cm_os_purge(void *p, size_t size);
bool cm_os_protect(void *p, size_t size, bool accessible);
bool cm_os_resize_in_place(void *p, size_t old_size, size_t new_size);
void *cm_os_move_aligned(void *p, size_t old_size, size_t new_size, size_t align);
struct cm_segment *cm_os_heap_segment(void);
void cm_os_release_segment(struct cm_segment *s);
void cm_os_fork_child(void);

struct cm_os_stats {
    size_t held, held_peak;           /* bytes now and at most */
    uint64_t mapped, unmapped, purged;  /* bytes ever */
};
void cm_os_stats_get(struct cm_os_stats *out);
void cm_segmap_set(const void *seg, uint8_t tag);
void cm_segmap_clear(const void *seg);

/* The owner tag (types.h) of the segment whose header starts at addr's
 * 4 MiB granule, or 0. One byte per granule keeps the test to a shift and
 * a load. */
static inline unsigned cm_segmap_tag(uintptr_t addr)
{
    uintptr_t g = addr >> CM_SEG_SHIFT;
    if (cm_unlikely(g >= CM_SEGMAP_SIZE))
        return 0;
    return __atomic_load_n(&cm_hot.segmap[g], __ATOMIC_RELAXED);
}

/* Tags of heap segments, of core arenas or of the features' arenas. */
static inline bool cm_tag_is_heap(unsigned tag)
{
    return tag != 0 && tag != CM_TAG_HUGE;
}

static inline struct cm_segment *cm_segment_of(const void *p)
{
    return (struct cm_segment *)((uintptr_t)p & ~(uintptr_t)CM_SEG_MASK);
}

static inline size_t cm_page_index(const void *p)
{
    return ((uintptr_t)p & CM_SEG_MASK) >> CM_PAGE_SHIFT;
}

/* Circular doubly-linked lists of runs: an arena's free runs of one order,
 * or a bin's runs that have free blocks. */
static inline void cm_list_insert(struct cm_run **head, struct cm_run *r, bool at_front)
{
    if (!*head) {
        r->next = r->prev = r;
        *head = r;
        return;
    }
    struct cm_run *first = *head;
    r->next = first;
    r->prev = first->prev;
    first->prev->next = r;
    first->prev = r;
    if (at_front)
        *head = r;
}

static inline void cm_list_remove(struct cm_run **head, struct cm_run *r)
{
    if (r->next == r) {
        *head = NULL;
    } else {
        r->prev->next = r->next;
        r->next->prev = r->prev;
        if (*head == r)
            *head = r->next;
    }
    r->next = r->prev = NULL;
}

/* ---- run.c: page runs in heap segments (binary buddy) ---- */
struct cm_run *cm_run_alloc(struct cm_arena *a, unsigned order);
void cm_run_release(struct cm_arena *a, struct cm_run *r);
void cm_free_run_add(struct cm_arena *a, struct cm_run *r);
void cm_free_run_take(struct cm_arena *a, struct cm_run *r);

/* ---- segment.c: heap segments and the segment map ---- */
bool cm_segment_grow(struct cm_arena *a);
size_t cm_arena_release_segments(struct cm_arena *a, size_t keep);

/* ---- purge.c: giving free dirty pages back to the kernel ---- */
/* What a tick purges at most, for the cap and for the decay each (4 MiB,
 * a few hundred microseconds of madvise; one run may take it past that by
 * up to a run of the largest order), and how long an arena may stay above
 * the cap before its excess goes: both so many milliseconds and so many
 * ticks, so that a machine too busy to run the program at its pace does
 * not shorten the grace the program gets. */
#define CM_PURGE_CHUNK_PAGES 1024
#define CM_PURGE_GRACE_MS 50
#define CM_PURGE_GRACE_TICKS 8192
/* With the arena lock held, at the end of an operation that may have
 * released runs: a bounded share of the purging they call for. */
void cm_purge_tick(struct cm_arena *a);
/* With the lock held: purges every dirty run left alone for the purge
 * delay, or the oldest ones until at most keep_pages stay dirty. Return
 * the pages purged. */
size_t cm_purge_decay(struct cm_arena *a);
size_t cm_arena_purge(struct cm_arena *a, size_t keep_pages);
/* The background thread's round on a, with the lock held. */
void cm_purge_background(struct cm_arena *a);

/* ---- background.c: the opt-in background purge thread ---- */
enum { CM_BG_OFF = 0, CM_BG_WANTED, CM_BG_STARTING, CM_BG_RUNNING, CM_BG_FAILED };
extern int cm_background_state;
void cm_background_enable(void);
void cm_background_start(void);
void cm_background_after_fork_child(void);
/* From the start of a slow path, with no lock held. */
static inline void cm_background_maybe_start(void)
{
    if (cm_unlikely(__atomic_load_n(&cm_background_state, __ATOMIC_RELAXED) == CM_BG_WANTED))
        cm_background_start();
}
static inline bool cm_background_running(void)
{
    return __atomic_load_n(&cm_background_state, __ATOMIC_RELAXED) == CM_BG_RUNNING;
}

static inline struct cm_segment *cm_run_segment(const struct cm_run *r)
{
    return cm_segment_of(r);
}

static inline size_t cm_run_first_page(const struct cm_run *r)
{
    return (size_t)(r - cm_run_segment(r)->runs);
}

static inline char *cm_run_base(const struct cm_run *r)
{
    return (char *)cm_run_segment(r) + (cm_run_first_page(r) << CM_PAGE_SHIFT);
}

static inline struct cm_run *cm_run_of_block(struct cm_segment *s, const void *p,
                                             unsigned cls)
{
    size_t first = cm_page_index(p) & ~(((size_t)1 << cm_classes[cls].order) - 1);
    return &s->runs[first];
}

/* ---- arena.c: arenas and their bins ---- */
extern struct cm_arena *cm_arenas[CM_MAX_ARENAS];
extern unsigned cm_narenas;
/* The features' arenas (seam.h), after the core's in every walk. */
extern struct cm_arena *cm_extra_arenas[CM_MAX_EXTRA_ARENAS];
extern const char *cm_extra_arena_names[CM_MAX_EXTRA_ARENAS];
extern unsigned cm_nextra_arenas;

void cm_arena_boot(void);
struct cm_arena *cm_arena_choose(void);
unsigned cm_arena_fill(struct cm_arena *a, unsigned cls, struct cm_tcache *tc, unsigned want);
void *cm_arena_alloc(struct cm_arena *a, unsigned cls);
void cm_arena_free_locked(struct cm_arena *a, struct cm_segment *s, void *p,
                          unsigned cls);
void cm_arena_free(struct cm_arena *a, struct cm_segment *s, void *p, unsigned cls);
bool cm_arena_block_is_free(struct cm_arena *a, struct cm_segment *s, void *p,
                            unsigned cls);
bool cm_arena_reclass(struct cm_segment *s, void *p, unsigned from, unsigned to);
bool cm_arena_trim(struct cm_arena *a);
void cm_arena_thread_left(struct cm_arena *a);
/* What an arena keeps of what a leaving thread frees: one free segment and
 * 1 MiB of dirty pages, so that a program that starts a thread per task
 * does not fault in and set up again, for every thread, what the last one
 * gave back. */
#define CM_EXIT_KEEP_SEGMENTS 1
#define CM_EXIT_KEEP_PAGES 256
void cm_arena_push_remote(struct cm_arena *a, unsigned cls, struct cm_block *first,
                          struct cm_block *last);
void cm_arena_collect_remote(struct cm_arena *a);
bool cm_trim_all(void);
void cm_arena_fork_child(void);
struct cm_arena *cm_arena_lock_current(struct cm_arena *a);

/* ---- huge.c: huge blocks, one mmap each ---- */
void *cm_huge_alloc(size_t n, size_t align);
void cm_huge_free(struct cm_segment *s);
void *cm_huge_realloc(struct cm_segment *s, size_t n);
size_t cm_huge_usable(const struct cm_segment *s);
struct cm_segment *cm_huge_find_aligned(const void *p);
bool cm_huge_cache_flush(void);
void cm_huge_cache_expire(void);
bool cm_huge_is_cached(const void *p);
size_t cm_huge_cached_bytes(void);
void cm_huge_fork_child(void);
/* A mark a feature may keep on a huge block (hooks: its allocation was
 * reported); a new block has none. */
void cm_huge_set_mark(struct cm_segment *s, bool on);
bool cm_huge_marked(const struct cm_segment *s);

struct cm_huge_stats {
    size_t count, bytes, max_count, max_bytes;
};
void cm_huge_stats_get(struct cm_huge_stats *out);
bool cm_huge_may_map(void);

/* Whether a request of n bytes gets a mapping of its own: above the largest
 * class it must; from the mmap threshold up it does while M_MMAP_MAX
 * allows. */
static inline bool cm_maps_own(size_t n)
{
    return n > CM_MAX_CLASS_SIZE || (n >= cm_opt.mmap_threshold && cm_huge_may_map());
}

/* ---- zero.c: zero-size blocks, in a region never accessible ----
 * cm_zero_alloc: a unique address there for a request of 0 bytes aligned
 * to align (at most CM_ZERO_MAX_ALIGN), or NULL when none is left (the
 * caller then hands out an ordinary block). cm_zero_holds: whether p is in
 * the region, the one check the others need first. */
#define CM_ZERO_MAX_ALIGN ((size_t)4096)
void *cm_zero_alloc(size_t align);
bool cm_zero_holds(const void *p);
bool cm_zero_is_live(const void *p);
void cm_zero_free(const char *fn, const void *p);
/* realloc of the zero-size block p to n > 0 bytes, allocated by alloc. */
void *cm_zero_realloc(void *p, size_t n, void *(*alloc)(size_t n));

/* ---- tcache.c: the per-thread cache ---- */
extern __thread struct cm_tcache cm_tls __attribute__((tls_model("initial-exec")));

struct cm_tcache *cm_tcache_get(void);
void *cm_alloc_crossed(size_t n);
void *cm_alloc_slow(size_t n);
void cm_free_slow(void *p);
void cm_free_sized_slow(void *p, size_t size, size_t align);
void cm_core_free(void *p);
void cm_tcache_flush_all(struct cm_tcache *tc);
void cm_tcache_thread_exit(void *arg);
void cm_tcache_after_fork_child(void);
void cm_tcache_register_exit(struct cm_tcache *tc);
void cm_tcache_set_capacity(struct cm_tcache *tc, unsigned cls, uint32_t cap);
bool cm_block_is_free(struct cm_tcache *tc, struct cm_segment *s, void *p, unsigned cls);
void cm_count_request(size_t n);
void cm_tcache_countdown_all(uint64_t bytes);
void cm_tcache_retag_all(void);
void cm_countdown_arm(uint64_t bytes);
uint64_t cm_tcache_requested(const struct cm_tcache *tc);

static inline struct cm_block *cm_link_decode(uintptr_t enc)
{
    return (struct cm_block *)(enc ^ cm_hot.link_secret);
}

static inline uintptr_t cm_link_encode(const struct cm_block *b)
{
    return (uintptr_t)b ^ cm_hot.link_secret;
}

/* ---- fork.c ---- */
void cm_fork_install(void);

/* ---- init.c: initialisation ---- */
extern cm_lock_t cm_global_lock;
extern int cm_initialized;
void cm_init_slow(void);

static inline void cm_ensure_init(void)
{
    if (cm_unlikely(!__atomic_load_n(&cm_initialized, __ATOMIC_ACQUIRE)))
        cm_init_slow();
}

/* ---- seam.h's state: the features' mode ---- */
static inline unsigned cm_ext_mode(void)
{
    return __atomic_load_n(&cm_hot.ext, __ATOMIC_RELAXED);
}

/* Whether calls other than malloc and free (which reach the features
 * through their slow paths) must go to cm_ext. Initialises cmalloc first,
 * since attaching the features decides. */
static inline bool cm_ext_calls(void)
{
    cm_ensure_init();
    return cm_ext_mode() & CM_EXT_CALLS;
}

/* Clears the first n bytes of a block just handed out without alignment,
 * for calloc. A fresh huge mapping is zero already: clearing it would only
 * fault in pages the program may never touch. */
static inline void cm_zero_new_block(void *p, size_t n)
{
    struct cm_segment *s = cm_segment_of(p);
    if (s->kind != CM_SEG_HUGE || !s->zeroed)
        __builtin_memset(p, 0, n);
}

/* ---- api.c: the core paths under the entry points ---- */
void *cm_own_malloc(size_t n);
void *cm_alloc_aligned(size_t align, size_t n);
unsigned cm_aligned_class(size_t align, size_t n);
void *cm_core_realloc(void *p, size_t n);
size_t cm_core_usable(const void *p);

/* ---- api.c / shared helpers ---- */
struct cm_block_info {
    struct cm_segment *segment;
    unsigned cls;
};
struct cm_block_info cm_locate(const void *p);
/* cm_locate, aborting with "fn(): invalid pointer" for anything but a block. */
struct cm_block_info cm_locate_or_die(const char *fn, const void *p);
_Noreturn void cm_invalid_pointer(const char *fn, const void *p);

/* ---- stats.c ---- */
void cm_stats_print_fd(int fd);
void cm_stats_report_fd(int fd, int format, bool from_signal);
void cm_stats_thread_exit(struct cm_arena *a, struct cm_tcache *tc);
struct mallinfo2 cm_stats_mallinfo2(void);
int cm_stats_malloc_info(int options, FILE *fp);

#pragma GCC visibility pop

#include "fastpath.h"

#endif
