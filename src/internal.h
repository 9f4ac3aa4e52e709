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
    size_t purge_delay_ms;   /* how long freed huge mappings stay cached */
    int stats_at_exit;       /* enum cm_stats_format */
    int stats_signal;        /* signal that prints the stats; 0 = none */
    int verbose;
    int hardened;            /* read at start-up only: see cm_guard_init */
};

extern struct cm_options cm_opt;
void cm_options_read(void);
int cm_options_mallopt(int param, int value);

/* ---- sizeclass.c: the generated class table ---- */
struct cm_class {
    uint32_t size;
    uint32_t nblocks;       /* blocks in one run */
    uint8_t order;          /* run size: 2^order pages */
    uint32_t tcache_max;    /* thread-cache capacity; 0 = not cached */
    uint32_t tcache_start;  /* capacity of a new thread's bin, which grows */
    /* The class's region of the slot array: the most it could cache under
     * any option, so the layout never changes. */
    uint16_t slot_first;
    uint16_t slot_count;
};

/* Read on every malloc and free: one base address for all of it. free()
 * tells a block start of class cls from any other address in a run of that
 * class with one multiply (cm_is_block_start); the segment map comes last,
 * as it is 32 MiB of address space of which only the pages for granules we
 * use are ever touched. */
#define CM_SEGMAP_SIZE ((size_t)1 << (CM_ADDR_BITS - CM_SEG_SHIFT))

struct cm_hot {
    uint64_t div_magic[CM_NCLASSES + 1];
    uint64_t div_limit[CM_NCLASSES + 1];
    uint32_t run_mask[CM_NCLASSES + 1];   /* run size - 1: runs are aligned to their size */
    uintptr_t link_secret;  /* XORed into free-list links */
    uintptr_t free_key;     /* stored in every free block */
    uint8_t ext;            /* enum cm_ext_bits: features on the ext paths */
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
    unsigned k = 63 - (unsigned)__builtin_clzl(m);
    return CM_TINY_CLASSES + 1 + (k - 7) * 4 + (unsigned)((m >> (k - 2)) & 3);
}

/* Whether addr, which lies in a run of class cls, is the start of one of
 * the run's blocks. With x the offset in the run, d the class size and
 * c = floor(2^64 / d) + 1 = (2^64 + e) / d, x = k d + r gives
 * x c = k e + r c (mod 2^64): k e <= last e when r = 0, and at least c,
 * which is larger, when r > 0 (runs of at most 2 MiB keep both from
 * wrapping). So one compare checks both the alignment and the range
 * (Lemire, Kaser and Kurz, "Faster remainder by direct computation"). */
static inline bool cm_is_block_start(uintptr_t addr, unsigned cls)
{
    uint64_t x = (uint32_t)addr & cm_hot.run_mask[cls];
    return x * cm_hot.div_magic[cls] <= cm_hot.div_limit[cls];
}

/* ---- libc.c: the only seam to libc that may run inside malloc ---- */
size_t cm_format(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t cm_vformat(char *buf, size_t cap, const char *fmt, va_list ap);
void cm_write_fd(int fd, const char *buf, size_t len);
void cm_message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void cm_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *cm_getenv(const char *name);
unsigned cm_online_cpus(void);
void cm_random_seed(uintptr_t out[2]);

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
extern cm_lock_t cm_heap_lock;

void *cm_os_map(size_t size);
void *cm_os_map_aligned(size_t size, size_t align);
void cm_os_unmap(void *p, size_t size);
void cm_os_purge(void *p, size_t size);
bool cm_os_protect(void *p, size_t size, bool accessible);
bool cm_os_resize_in_place(void *p, size_t old_size, size_t new_size);
void *cm_os_move_aligned(void *p, size_t old_size, size_t new_size, size_t align);
struct cm_segment *cm_os_heap_segment(void);
void cm_os_release_segment(struct cm_segment *s);

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
size_t cm_arena_purge(struct cm_arena *a, size_t keep_pages);
size_t cm_arena_release_segments(struct cm_arena *a);

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

void cm_arena_boot(void);
struct cm_arena *cm_arena_choose(void);
unsigned cm_arena_fill(struct cm_arena *a, unsigned cls, struct cm_tcache *tc, unsigned want);
void *cm_arena_alloc(struct cm_arena *a, unsigned cls);
void cm_arena_free_locked(struct cm_arena *a, struct cm_segment *s, void *p,
                          unsigned cls);
void cm_arena_free(struct cm_arena *a, struct cm_segment *s, void *p, unsigned cls);
bool cm_arena_block_is_free(struct cm_arena *a, struct cm_segment *s, void *p,
                            unsigned cls);
void cm_arena_reclass(struct cm_segment *s, void *p, unsigned from, unsigned to);
bool cm_arena_trim(struct cm_arena *a);
void cm_arena_push_remote(struct cm_arena *a, unsigned cls, struct cm_block *first,
                          struct cm_block *last);
void cm_arena_collect_remote(struct cm_arena *a);
bool cm_trim_all(void);

/* ---- large.c: huge blocks, one mmap each ---- */
void *cm_huge_alloc(size_t n, size_t align);
void cm_huge_free(struct cm_segment *s);
void *cm_huge_realloc(struct cm_segment *s, size_t n);
size_t cm_huge_usable(const struct cm_segment *s);
struct cm_segment *cm_huge_find_aligned(const void *p);
bool cm_huge_cache_flush(void);
bool cm_huge_is_cached(const void *p);
size_t cm_huge_cached_bytes(void);

struct cm_huge_stats {
    size_t count, bytes, max_count, max_bytes;
};
void cm_huge_stats_get(struct cm_huge_stats *out);

/* ---- tcache.c: the per-thread cache ---- */
extern __thread struct cm_tcache cm_tls __attribute__((tls_model("initial-exec")));
extern __thread void *cm_tls_slots[CM_TCACHE_SLOTS] __attribute__((tls_model("initial-exec")));

struct cm_tcache *cm_tcache_get(void);
void *cm_alloc_crossed(size_t n);
void *cm_alloc_slow(size_t n);
void cm_free_slow(void *p);
void cm_core_free(void *p);
void cm_tcache_flush_all(struct cm_tcache *tc);
void cm_tcache_thread_exit(void *arg);
void cm_tcache_after_fork_child(void);
void cm_tcache_register_exit(struct cm_tcache *tc);
void cm_tcache_set_capacity(struct cm_tcache *tc, unsigned cls, uint32_t cap);
bool cm_block_is_free(struct cm_tcache *tc, struct cm_segment *s, void *p, unsigned cls);
void cm_count_request(size_t n);
void cm_tcache_countdown_all(uint64_t bytes);
uint64_t cm_tcache_requested(const struct cm_tcache *tc);

static inline struct cm_block *cm_link_decode(uintptr_t enc)
{
    return (struct cm_block *)(enc ^ cm_hot.link_secret);
}

static inline uintptr_t cm_link_encode(const struct cm_block *b)
{
    return (uintptr_t)b ^ cm_hot.link_secret;
}

/* A bin's region of the slot array, and how many blocks it holds: the
 * head, full and empty marks are only low bits, so positions are
 * recomputed from the region (see types.h). */
static inline void **cm_tbin_top(unsigned cls)
{
    return &cm_tls_slots[cm_classes[cls].slot_first + cm_classes[cls].slot_count];
}

static inline uint32_t cm_tbin_count(const struct cm_tcache *tc, unsigned cls)
{
    return (uint16_t)(tc->empty[cls] - (uint16_t)(uintptr_t)tc->head[cls]) / sizeof(void *);
}

static inline uint32_t cm_tbin_capacity(const struct cm_tcache *tc, unsigned cls)
{
    return (uint16_t)(tc->empty[cls] - tc->full[cls]) / sizeof(void *);
}

static inline bool cm_tbin_is_empty(const struct cm_tcache *tc, unsigned cls)
{
    return (uint16_t)(uintptr_t)tc->head[cls] == tc->empty[cls];
}

static inline bool cm_tbin_is_full(const struct cm_tcache *tc, unsigned cls)
{
    return (uint16_t)(uintptr_t)tc->head[cls] == tc->full[cls];
}

static inline void cm_tbin_push(struct cm_tcache *tc, unsigned cls, struct cm_block *b)
{
    b->free_key = tc->free_key;
    *--tc->head[cls] = b;
}

static inline struct cm_block *cm_tbin_pop(struct cm_tcache *tc, unsigned cls)
{
    struct cm_block *b = *tc->head[cls]++;
    b->free_key = 0;
    return b;
}

/* A pop from this thread's cache, no lock, no call: malloc's fast path
 * after the countdown, and what the features above the core allocate
 * with. */
static inline void *cm_cache_alloc(size_t n)
{
    unsigned cls;
    if (cm_likely(n <= CM_LOOKUP_MAX))
        cls = cm_hot.class_of[n];
    else if (n <= CM_LOOKUP2_MAX)
        cls = cm_hot.class_of_medium[(n + (1u << CM_LOOKUP2_SHIFT) - 1) >> CM_LOOKUP2_SHIFT];
    else
        return cm_alloc_slow(n);
    void **head = cm_tls.head[cls];
    if (cm_unlikely((uint16_t)(uintptr_t)head == cm_tls.empty[cls]))
        return cm_alloc_slow(n);
    struct cm_block *b = *head;
    cm_tls.head[cls] = head + 1;
    b->free_key = 0;
    return b;
}

/* The malloc fast path: the countdown (statistics, and the features that
 * sample allocations), then a pop from this thread's cache. The countdown
 * runs out when it reaches 0, not only below it, so that with a countdown
 * of 0 every call, malloc(0) included, takes the slow path. */
static inline void *cm_alloc(size_t n)
{
#if defined(__x86_64__)
    /* One subtract with a memory operand, which gcc does not emit for
     * __builtin_sub_overflow on a TLS variable (it loads, subtracts and
     * stores). The operand is an input with a memory clobber, not an
     * output: gcc 12 mislays the label of an asm goto with outputs. */
    __asm__ goto("subq %1, %0\n\tjbe %l[crossed]"
                 :
                 : "m"(cm_tls.countdown), "r"(n)
                 : "cc", "memory"
                 : crossed);
    return cm_cache_alloc(n);
crossed:
    return cm_alloc_crossed(n);
#else
    uint64_t left = cm_tls.countdown;
    cm_tls.countdown = left - n;
    if (cm_unlikely(n >= left))
        return cm_alloc_crossed(n);
    return cm_cache_alloc(n);
#endif
}

/* The page-class byte of addr, which lies in the heap segment at granule g:
 * the segment's table starts at g * 4 MiB + offsetof(page_cls), and addr's
 * page is (addr >> 12) - g * 1024 of it, so one multiply finds it. gcc would
 * turn the multiply into four shifts and subtracts. */
static inline const uint8_t *cm_page_cls_of(uintptr_t g, uintptr_t addr)
{
    uintptr_t table;
#if defined(__x86_64__)
    __asm__("imulq %2, %1, %0" : "=r"(table) : "r"(g), "i"(CM_SEG_SIZE - CM_SEG_PAGES));
#else
    table = g * (CM_SEG_SIZE - CM_SEG_PAGES);
#endif
    return (const uint8_t *)(table + (addr >> CM_PAGE_SHIFT)) +
           offsetof(struct cm_segment, page_cls);
}

/* The free fast path: a push onto this thread's cache. The segment map
 * byte of p's granule must be this thread's arena tag, which also rules out
 * pointers that are not ours, huge blocks, blocks of other arenas and of
 * the features' arenas; the page byte gives the class. Anything unusual (NULL, not a block start, a block that already
 * looks free, a full or disabled bin) goes to cm_free_slow. */
static inline void cm_free(void *p)
{
    uintptr_t addr = (uintptr_t)p, g = addr >> CM_SEG_SHIFT;
    if (cm_likely(g < CM_SEGMAP_SIZE && cm_hot.segmap[g] == cm_tls.tag)) {
        unsigned cls = *cm_page_cls_of(g, addr);
        struct cm_block *b = p;
        uintptr_t key = cm_tls.free_key;
        void **head = cm_tls.head[cls];
        if (cm_likely(cm_is_block_start(addr, cls) && b->free_key != key &&
                      (uint16_t)(uintptr_t)head != cm_tls.full[cls])) {
            b->free_key = key;
            cm_tls.head[cls] = head - 1;
            head[-1] = b;
            return;
        }
    }
    cm_free_slow(p);
}

/* ---- init.c: initialisation and fork ---- */
extern cm_lock_t cm_global_lock;
extern int cm_initialized;
void cm_init_slow(void);

static inline void cm_ensure_init(void)
{
    if (cm_unlikely(!__atomic_load_n(&cm_initialized, __ATOMIC_ACQUIRE)))
        cm_init_slow();
}

/* ---- ext.c: the paths taken while a feature must see every block ----
 * Each entry point of api.c tests cm_hot.ext once: zero (the default, once
 * initialisation has run) keeps it on the fast paths; otherwise the call
 * goes here, which adds hooks, hardened-mode checks and Valgrind
 * annotations around the core paths. */
enum cm_ext_bits {
    CM_EXT_HOOKS = 1,     /* hooks.c: at least one hook is installed */
    CM_EXT_HARDENED = 2,  /* hardened.c: hardened mode */
    CM_EXT_VALGRIND = 4,  /* valgrind.c: running under Valgrind */
};
#define CM_EXT_GUARDS (CM_EXT_HARDENED | CM_EXT_VALGRIND)

void *cm_ext_alloc(size_t n, size_t align, enum cmalloc_function fn);
void cm_ext_free(void *p, enum cmalloc_function fn);
void *cm_ext_realloc(void *p, size_t n);
size_t cm_ext_usable(void *p);

/* ---- hooks.c: the hook registry, sampling and traced blocks ----
 * A block whose allocation was reported is "traced": it lives in the traced
 * arena (segments of kind CM_SEG_TRACED) or is a huge block marked traced,
 * so free() finds out without a lookup, and it never enters a thread cache,
 * so it cannot come back untraced. */
extern struct cm_arena cm_traced_arena;

/* Per-thread sampling state, in initial-exec TLS like the cache. */
struct cm_sampler {
    uint64_t bytes_left;   /* until the next sample */
    uint64_t rng;
    unsigned generation;   /* of the interval bytes_left was drawn for */
    unsigned depth;        /* > 0 while this thread runs a hook */
    unsigned slot;         /* the slot of the hook it runs */
};
extern __thread struct cm_sampler cm_sampler_tls __attribute__((tls_model("initial-exec")));
extern unsigned cm_sample_generation;

/* Counts n bytes off this thread's countdown and says whether the
 * allocation is certainly not sampled; when it may be, the countdown is
 * left alone and cm_hooks_should_trace decides. */
static inline bool cm_sample_skip(size_t n)
{
    struct cm_sampler *t = &cm_sampler_tls;
    if (cm_likely(n < t->bytes_left &&
                  t->generation == __atomic_load_n(&cm_sample_generation, __ATOMIC_RELAXED))) {
        t->bytes_left -= n;
        return true;
    }
    return false;
}

bool cm_hooks_should_trace(size_t n, size_t *weight);
size_t cm_hooks_weight(size_t n);
void *cm_traced_alloc(size_t n, size_t align);
void cm_hooks_report(const struct cmalloc_event *ev);
void cm_hooks_fork_prepare(void);
void cm_hooks_fork_parent(void);
void cm_hooks_fork_child(void);

/* ---- hardened.c and valgrind.c: per-block guards (CM_EXT_GUARDS) ----
 * The core hands out blocks of cm_guard_request(n) bytes; the guards keep
 * what they need in the extra room (the requested size, a canary). */
void cm_guard_init(void);
size_t cm_guard_request(size_t n);
void *cm_guard_after_alloc(void *p, size_t n, bool zero);
bool cm_guard_before_free(void *p);
size_t cm_guard_usable(void *p, size_t core_usable);
/* Resizes p in place, or a huge block by moving its pages; NULL when ext.c
 * must move it by copying. */
void *cm_guard_realloc(void *p, size_t n);
/* The guards' share of the core: the random order of cache refills in
 * hardened mode, and what a run must lose when it is given back. */
uint64_t cm_guard_random(void);
void cm_guard_forget_run(const struct cm_run *r);
extern cm_lock_t cm_quarantine_lock;
/* Freed blocks wait in the quarantine, where the core still counts them as
 * handed out: what cmalloc_owns and the statistics must know. */
bool cm_guard_is_live(const void *p);
bool cm_guard_quarantined(const struct cm_arena *a, size_t counts[CM_NCLASSES + 1],
                          bool only_try);

/* Memcheck client requests (valgrind.c), compiled in with CMALLOC_VALGRIND. */
#ifdef CM_VALGRIND
bool cm_valgrind_running(void);
void cm_valgrind_alloc(void *p, size_t n, bool zeroed);
void cm_valgrind_free(void *p);
void cm_valgrind_noaccess(const void *p, size_t n);
void cm_valgrind_defined(const void *p, size_t n);
void cm_valgrind_undefined(const void *p, size_t n);
void cm_valgrind_quiet(bool quiet);
#else
static inline bool cm_valgrind_running(void)
{
    return false;
}
static inline void cm_valgrind_alloc(void *p, size_t n, bool zeroed)
{
    (void)p, (void)n, (void)zeroed;
}
static inline void cm_valgrind_free(void *p)
{
    (void)p;
}
static inline void cm_valgrind_noaccess(const void *p, size_t n)
{
    (void)p, (void)n;
}
static inline void cm_valgrind_defined(const void *p, size_t n)
{
    (void)p, (void)n;
}
static inline void cm_valgrind_undefined(const void *p, size_t n)
{
    (void)p, (void)n;
}
static inline void cm_valgrind_quiet(bool quiet)
{
    (void)quiet;
}
#endif

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

#endif
