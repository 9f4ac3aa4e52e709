/* The fast paths: everything the common malloc and free execute, as
 * static inline functions in one place. No lock, no system call, no feature
 * gate: a countdown, a class lookup and a pop for malloc; an owner-tag
 * compare, a page-class load, a block-start check, a free-key compare and a
 * push for free. Anything else leaves through one call to a slow path
 * (tcache.c). Every change here is counted in instructions per
 * malloc+free pair (scripts/bench, callgrind). */
#ifndef CM_FASTPATH_H
#define CM_FASTPATH_H

#include "internal.h"

#pragma GCC visibility push(hidden)

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

/* The class a request of n bytes gets on malloc's fast path, or 0 when it
 * takes the slow path. */
static inline unsigned cm_fast_class(size_t n)
{
    if (cm_likely(n <= CM_LOOKUP_MAX))
        return cm_hot.class_of[n];
    if (n <= CM_LOOKUP2_MAX)
        return cm_hot.class_of_medium[(n + (1u << CM_LOOKUP2_SHIFT) - 1) >> CM_LOOKUP2_SHIFT];
    return 0;
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
 * the features' arenas; the page byte gives the class. With sized (a
 * constant), the size must name that class too. Returns false for anything
 * unusual (NULL, not a block start, a block that already looks free, a full
 * or disabled bin), which the caller sends to a slow path. */
static inline bool cm_free_fast(void *p, size_t size, bool sized)
{
    uintptr_t addr = (uintptr_t)p, g = addr >> CM_SEG_SHIFT;
    if (cm_likely(g < CM_SEGMAP_SIZE && cm_hot.segmap[g] == cm_tls.tag)) {
        unsigned cls = *cm_page_cls_of(g, addr);
        struct cm_block *b = p;
        uintptr_t key = cm_tls.free_key;
        void **head = cm_tls.head[cls];
        if (cm_likely((!sized || cls == cm_fast_class(size)) && cm_is_block_start(addr, cls) &&
                      b->free_key != key &&
                      (uint16_t)(uintptr_t)head != cm_tls.full[cls])) {
            b->free_key = key;
            cm_tls.head[cls] = head - 1;
            head[-1] = b;
            return true;
        }
    }
    return false;
}

static inline void cm_free(void *p)
{
    if (!cm_free_fast(p, 0, false))
        cm_free_slow(p);
}

/* free_sized and the sized operator delete. */
static inline void cm_free_sized(void *p, size_t size)
{
    if (!cm_free_fast(p, size, true))
        cm_free_sized_slow(p, size, 0);
}

#pragma GCC visibility pop

#endif
