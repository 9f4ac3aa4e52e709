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

/* A thread-cache bin (see types.h): two lists of blocks linked like free
 * lists, with room for cap - count more. */
static inline bool cm_tbin_enabled(const struct cm_tcache *tc, unsigned cls)
{
    return tc->cap[cls] != 0;
}

static inline uint32_t cm_tbin_count(const struct cm_tcache *tc, unsigned cls)
{
    return (uint32_t)tc->cap[cls] - tc->room[cls];
}

static inline uint32_t cm_tbin_capacity(const struct cm_tcache *tc, unsigned cls)
{
    return tc->cap[cls];
}

static inline bool cm_tbin_is_empty(const struct cm_tcache *tc, unsigned cls)
{
    return !tc->head[cls] && !tc->freed[cls];
}

static inline bool cm_tbin_is_full(const struct cm_tcache *tc, unsigned cls)
{
    return tc->room[cls] == 0;
}

/* Onto the list malloc takes first: the slow paths' pushes, refills among
 * them, whose blocks should be used before those freed since. */
static inline void cm_tbin_push(struct cm_tcache *tc, unsigned cls, struct cm_block *b)
{
    b->free_key = tc->free_key;
    b->next_enc = cm_link_encode(tc->head[cls]);
    tc->head[cls] = b;
    tc->room[cls]--;
}

/* The next block malloc would take; the bin must not be empty. */
static inline struct cm_block *cm_tbin_pop(struct cm_tcache *tc, unsigned cls)
{
    struct cm_block *b = tc->head[cls];
    if (!b) {
        b = tc->freed[cls];
        tc->freed[cls] = NULL;
    }
    tc->head[cls] = cm_link_decode(b->next_enc);
    tc->room[cls]++;
    b->free_key = 0;
    return b;
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

/* A pop from this thread's cache, no lock, no call: malloc's fast path
 * after the countdown, and what the features above the core allocate
 * with. */
static inline void *cm_cache_alloc(size_t n)
{
    /* Requests above the lookup tables get class 0, whose bin is always
     * empty. */
    unsigned cls = cm_fast_class(n);
    struct cm_block *b = cm_tls.head[cls];
    /* Not marked unlikely: laid out in line, the take of the freed list
     * (once per cache's worth of pairs) needs no jump back. */
    if (__builtin_expect_with_probability(!b, 1, 0.5)) {
        b = cm_tls.freed[cls];
        if (cm_unlikely(!b))
            return cm_alloc_slow(n);
        cm_tls.freed[cls] = NULL;
    }
#if defined(__x86_64__)
    /* The block in the return register from its load on, and the TLS base
     * in another: gcc would otherwise copy it there at the end. */
    __asm__("" : "+a"(b));
#endif
    cm_tls.head[cls] = cm_link_decode(b->next_enc);
    cm_tls.room[cls]++;
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
 * page is (addr >> 12) - g * 1024 of it, so one multiply of g, which free
 * has already computed for the segment map, finds it. */
static inline const uint8_t *cm_page_cls_of(uintptr_t g, uintptr_t addr)
{
    uintptr_t table;
#if defined(__x86_64__)
    /* One multiply, which gcc would rebuild from shifts and subtracts. */
    __asm__("imulq %2, %1, %0" : "=r"(table) : "r"(g), "i"(CM_SEG_SIZE - CM_SEG_PAGES));
#else
    table = g * (CM_SEG_SIZE - CM_SEG_PAGES);
#endif
    return (const uint8_t *)table + offsetof(struct cm_segment, page_cls) + (addr >> CM_PAGE_SHIFT);
}

/* Takes one block's room in this thread's bin of class cls, if it has any:
 * the free fast path's last check. */
static inline bool cm_take_room(unsigned cls)
{
#if defined(__x86_64__)
    /* One subtract with a memory operand, as for malloc's countdown. */
    __asm__ goto("subw $1, %0\n\tjb %l[full]" : : "m"(cm_tls.room[cls]) : "cc", "memory" : full);
    return true;
full:
    cm_tls.room[cls] = 0;
    return false;
#else
    if (!cm_tls.room[cls])
        return false;
    cm_tls.room[cls]--;
    return true;
#endif
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
        if (cm_likely((!sized || cls == cm_fast_class(size)) && cm_is_block_start(addr, cls) &&
                      b->free_key != key && cm_take_room(cls))) {
            struct cm_block **freed = &cm_tls.freed[cls];
            b->next_enc = cm_link_encode(*freed);
            /* Two stores, not one vector store built from two registers. */
            __asm__("" : : : "memory");
            b->free_key = key;
            *freed = b;
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
