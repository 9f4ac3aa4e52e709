/* The structures of cmalloc and the invariants each one keeps.
 *
 * Memory comes from the OS in segments: 4 MiB, aligned to 4 MiB, taken from
 * the sbrk heap when possible and from mmap otherwise. A segment starts with
 * its header, so any block address masked with ~CM_SEG_MASK gives the header
 * of the segment it lives in; no block carries a header of its own.
 *
 *   heap segment:  [ header | runs of pages ............................ ]
 *   huge segment:  [ header page | one block from mmap ....... ]
 *
 * A heap segment's pages are managed as a binary buddy system: a run of
 * 2^order pages starts at a page index that is a multiple of 2^order. A run
 * either holds blocks of one size class or is free. Every block of a size
 * class is carved from a run of that class, so free() finds the class from a
 * per-page byte in the header.
 */
#ifndef CM_TYPES_H
#define CM_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "lock.h"

#define CM_PAGE_SHIFT 12
#define CM_PAGE_SIZE ((size_t)1 << CM_PAGE_SHIFT)
#define CM_SEG_SHIFT 22
#define CM_SEG_SIZE ((size_t)1 << CM_SEG_SHIFT)
#define CM_SEG_MASK (CM_SEG_SIZE - 1)
#define CM_SEG_PAGES (CM_SEG_SIZE >> CM_PAGE_SHIFT)

/* Runs are at most half a segment: the first half also holds the header. */
#define CM_MAX_ORDER 9

/* User address space: on 64-bit targets that of x86_64 and aarch64 without
 * 5-level paging, on 32-bit ones all of it. Pointers above it are never
 * ours; below it the segment map covers every segment. */
#if UINTPTR_MAX > 0xFFFFFFFFu
#define CM_ADDR_BITS 47
#else
#define CM_ADDR_BITS 32
#endif

#define CM_ALIGNMENT 16

/* A 64-bit counter that other threads load atomically (the statistics):
 * aligned to 8 also where the ABI aligns uint64_t to 4 (i386), as a
 * misaligned 8-byte load can tear there. The same type on 64-bit targets. */
typedef uint64_t cm_u64_shared __attribute__((aligned(8)));

/* Size classes: 16-byte steps up to 128 B, then 4 classes per doubling up to
 * 1 MiB. Class 0 means "no class" (a page that holds no small blocks). */
#define CM_TINY_MAX 128
#define CM_NCLASSES 60
#define CM_MAX_CLASS_SIZE ((size_t)1 << 20)
/* malloc finds the class of a request of up to CM_LOOKUP_MAX bytes with one
 * table load indexed by the size itself, and of up to CM_LOOKUP2_MAX bytes
 * with one indexed by the size in 256-byte steps (classes above 1 KiB are
 * multiples of 256). */
#define CM_LOOKUP_MAX 4096
#define CM_LOOKUP2_SHIFT 8
#define CM_LOOKUP2_MAX ((size_t)64 << 10)

/* A free block: a key that marks it as free, so that a second free is
 * noticed, first, where the free fast path reads it; then the link of the
 * list it is on (a run's free list, a thread cache's bin or a remote
 * stack), encoded with the process secret so that a stray write into freed
 * memory does not redirect the allocator. */
struct cm_block {
    uintptr_t free_key;
    uintptr_t next_enc;
};

/* Owner tags: the segment map holds one byte per 4 MiB granule, the tag of
 * the arena whose heap segment starts there, CM_TAG_HUGE for a huge block,
 * or 0. Core arenas have tags 1..CM_MAX_ARENAS; arenas registered by the
 * features above the core take tags from CM_TAG_EXTRA_FIRST up. A thread's
 * cache holds the tag of its arena, so the free fast path tells "one of my
 * arena's blocks" from everything else with one compare; CM_TAG_NONE is in
 * no segment map byte, so a thread holding it sends every free to the slow
 * path. */
#define CM_TAG_EXTRA_FIRST 0xF0
#define CM_TAG_NONE 0xFE
#define CM_TAG_HUGE 0xFF

enum cm_run_state {
    CM_RUN_FREE = 0,  /* on its arena's free list of its order */
    CM_RUN_BLOCKS,    /* carved into blocks of class cls */
    CM_RUN_META,      /* the segment header */
};

/* A run descriptor lives in the segment header at the index of the run's
 * first page; descriptors of the other pages of the run are meaningless.
 * For a BLOCKS run: blocks [0, carved) have been handed out at least once;
 * nfree counts the blocks on 'free' plus the never carved ones
 * (nblocks - carved). The run is on its bin's list iff nfree > 0. */
struct cm_run {
    struct cm_block *free;
    struct cm_run *next;
    struct cm_run *prev;
    uint32_t carved;
    uint32_t nfree;
    uint8_t state;
    uint8_t order;
    uint8_t cls;
    uint8_t dirty;   /* FREE run: some of its pages may be resident */
    uint32_t dirty_ms;  /* FREE and dirty: when it became free (coarse ms) */
};

enum cm_seg_kind { CM_SEG_HEAP = 1, CM_SEG_HUGE = 2 };

struct cm_arena;

/* The common head of every segment. page_cls sits in the first page of the
 * segment for both kinds, so free() may read it before it knows the kind:
 * in a huge segment it is all zero. */
struct cm_segment {
    struct cm_arena *arena;       /* owner (heap segments) */
    struct cm_segment *next;      /* arena's segment list / huge registry */
    size_t map_size;              /* bytes mapped (huge) or CM_SEG_SIZE */
    size_t block_offset;          /* huge: block start - segment start */
    uint64_t cached_at;           /* huge, in the cache: when it was freed (ns) */
    uint8_t kind;
    uint8_t from_mmap;            /* heap segment: 0 = sbrk, 1 = mmap */
    uint8_t zeroed;               /* huge: the block has never been written */
    uint8_t mark;                 /* huge: a feature's mark (cm_huge_set_mark) */
    uint8_t page_cls[CM_SEG_PAGES];
    struct cm_run runs[CM_SEG_PAGES];
};

/* A bin: the runs of one size class in one arena that still have free
 * blocks, the most recently useful first. */
struct cm_bin {
    struct cm_run *runs;
    cm_u64_shared nruns;  /* runs of this class the arena holds */
    /* Blocks handed out of runs (to caches or users) and given back, ever:
     * nmalloc - nfree blocks are out now. */
    cm_u64_shared nmalloc;
    cm_u64_shared nfree;
};

struct cm_tcache;

/* An arena: a pool of segments with its own lock. Threads are attached to an
 * arena and refill their caches from it; threads of other arenas give its
 * blocks back through the remote stacks, without the lock.
 *
 * An abandoned arena is one a forked child found locked (fork.c): another
 * arena with its index and tag has taken its place, nothing takes its lock
 * again but the thread that held it at the fork, and blocks freed back to
 * it are dropped. Its memory is never reused. */
struct cm_arena {
    cm_lock_t lock;
    unsigned index;
    uint8_t tag;                          /* in the segment map for its segments */
    uint8_t abandoned;
    unsigned nthreads;                    /* attached thread caches */
    struct cm_tcache *threads;            /* attached thread caches */
    struct cm_segment *segments;
    size_t nsegments;
    size_t dirty_pages;                   /* pages in dirty FREE runs */
    size_t free_pages;                    /* pages in FREE runs */
    size_t released_pages;                /* released since the last purge tick */
    uint32_t over_cap_ms;                 /* dirty above the cap since (0: not) */
    uint32_t over_cap_ticks;              /* purge ticks since then */
    uint32_t decay_checked_ms;            /* last look for runs left alone */
    size_t nsegments_peak;
    size_t bytes_out, bytes_out_peak;     /* in blocks handed out of runs */
    cm_u64_shared requested;              /* by threads that left the arena */
    /* FREE runs of each order: dirty ones (pages that may be resident) by
     * dirty_ms, the most recently freed first, and clean ones (purged or
     * never touched). */
    struct cm_run *dirty_runs[CM_MAX_ORDER + 1];
    struct cm_run *clean_runs[CM_MAX_ORDER + 1];
    struct cm_bin bins[CM_NCLASSES + 1];
    /* Blocks that threads of other arenas freed, one lock-free stack per
     * class (links encoded like free lists): a refill of the class takes
     * them first. On cache lines of their own, as those threads write them. */
    _Alignas(64) struct cm_block *remote[CM_NCLASSES + 1];
};

enum cm_tcache_state { CM_TC_NEW = 0, CM_TC_ACTIVE, CM_TC_DEAD };

/* The thread cache keeps its free blocks in two lists per class, linked
 * through the blocks (next_enc, encoded like every free list) and marked
 * with the free key: malloc pops from head[cls], free pushes onto
 * freed[cls], and malloc takes the freed list whole when head runs out
 * (mimalloc's free-list sharding). A free and the malloc after it then
 * touch different words, so the malloc's loads never wait on the free's
 * stores, whose addresses come late: they depend on the page-class byte.
 * room[cls] is how many more blocks the bin may take and cap[cls] its
 * capacity now, so the two lists hold cap - room blocks. A bin with cap 0
 * is disabled: its lists are empty and its room 0, so every malloc and
 * free of its class takes the slow path. That is the state of every bin of
 * a thread that is not set up yet or has exited, and of classes that are
 * not cached.
 *
 * The countdown counts the bytes malloc may hand out before it takes the
 * slow path once: the statistics count requested bytes as
 * requested_base - countdown, and features that want to see allocations
 * (sampling, guards) arm it short, down to 0 for every one. malloc takes
 * the slow path when a request is at least what is left.
 *
 * Per-thread state, in initial-exec TLS so touching it never allocates.
 * It starts with tag CM_TAG_NONE and countdown 0, so a new thread's first
 * call of either kind takes the slow path and attaches. */
struct cm_tcache {
    struct cm_block *freed[CM_NCLASSES + 1]; /* first: indexed with no offset */
    cm_u64_shared countdown;
    uintptr_t free_key;                   /* copy of the process-wide key */
    uint8_t tag;
    uint8_t state;
    uint16_t room[CM_NCLASSES + 1];
    uint16_t cap[CM_NCLASSES + 1];
    struct cm_block *head[CM_NCLASSES + 1];
    cm_u64_shared requested_base;
    /* Blocks this thread freed that belong to other arenas, on their way
     * back in batches (see tcache.c); counted per class for the stats. */
    struct cm_block *remote;
    uint32_t remote_blocks;
    uint32_t remote_bytes;
    uint16_t remote_count[CM_NCLASSES + 1];
    struct cm_arena *arena;
    struct cm_tcache *next;               /* arena's thread list */
    struct cm_tcache *prev;
};

#endif
