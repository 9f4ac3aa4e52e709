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

/* User address space on x86_64 and aarch64 without 5-level paging. Pointers
 * above it are never ours; below it the segment map covers every segment. */
#define CM_ADDR_BITS 47

#define CM_ALIGNMENT 16

/* Size classes: 16-byte steps up to 128 B, then 4 classes per doubling up to
 * 1 MiB. Class 0 means "no class" (a page that holds no small blocks). */
#define CM_TINY_MAX 128
#define CM_NCLASSES 60
#define CM_MAX_CLASS_SIZE ((size_t)1 << 20)
#define CM_LOOKUP_MAX 1024

/* A free block: the list link, encoded with the process secret so that a
 * stray write into freed memory does not redirect the allocator, and a key
 * that marks the block as free so a second free is noticed. */
struct cm_block {
    uintptr_t next_enc;
    uintptr_t free_key;
};

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
    uint32_t dirty_ms;  /* FREE and dirty: when it was last released */
};

/* A TRACED segment is a heap segment of the traced arena (hooks.c): its
 * blocks must not take the free fast path. */
enum cm_seg_kind { CM_SEG_HEAP = 1, CM_SEG_HUGE = 2, CM_SEG_TRACED = 3 };

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
    uint8_t traced;               /* huge: its allocation was reported to hooks */
    uint8_t page_cls[CM_SEG_PAGES];
    struct cm_run runs[CM_SEG_PAGES];
};

/* A bin: the runs of one size class in one arena that still have free
 * blocks, the most recently useful first. */
struct cm_bin {
    struct cm_run *runs;
    uint64_t nruns;       /* runs of this class the arena holds */
    /* Blocks handed out of runs (to caches or users) and given back, ever:
     * nmalloc - nfree blocks are out now. */
    uint64_t nmalloc;
    uint64_t nfree;
};

struct cm_tcache;

/* An arena: a pool of segments with its own lock. Threads are attached to an
 * arena and refill their caches from it; threads of other arenas give its
 * blocks back through the remote stacks, without the lock. */
struct cm_arena {
    cm_lock_t lock;
    unsigned index;
    uint8_t seg_kind;                     /* enum cm_seg_kind of its segments */
    unsigned nthreads;                    /* attached thread caches */
    struct cm_tcache *threads;            /* attached thread caches */
    struct cm_segment *segments;
    size_t nsegments;
    size_t dirty_pages;                   /* pages in dirty FREE runs */
    size_t free_pages;                    /* pages in FREE runs */
    uint32_t decay_checked_ms;            /* last look for runs to purge */
    size_t nsegments_peak;
    size_t bytes_out, bytes_out_peak;     /* in blocks handed out of runs */
    uint64_t requested;                   /* by threads that left the arena */
    struct cm_run *free_runs[CM_MAX_ORDER + 1];
    struct cm_bin bins[CM_NCLASSES + 1];
    /* Blocks that threads of other arenas freed, one lock-free stack per
     * class (links encoded like free lists): a refill of the class takes
     * them first. On cache lines of their own, as those threads write them. */
    _Alignas(64) struct cm_block *remote[CM_NCLASSES + 1];
};

/* One thread-cache bin holding max - avail blocks. free() only needs to know
 * whether there is room, so the bin counts room rather than blocks. A bin
 * with max == 0 (and so avail == 0) is disabled: that is how classes that
 * are not cached, and threads that are not set up yet or have exited, fall
 * through to the slow paths. */
struct cm_tbin {
    struct cm_block *head;
    uint32_t avail;
    uint32_t max;
};

enum cm_tcache_state { CM_TC_NEW = 0, CM_TC_ACTIVE, CM_TC_DEAD };

/* Per-thread state, in initial-exec TLS so touching it never allocates.
 * The two secrets are copies of the process-wide ones, kept here so that
 * the fast paths reach them from the same base address as the bins. */
struct cm_tcache {
    struct cm_tbin bins[CM_NCLASSES + 1];
    uintptr_t link_secret;
    uintptr_t free_key;
    /* Blocks this thread freed that belong to other arenas, on their way
     * back in batches (see tcache.c); counted per class for the stats. */
    struct cm_block *remote;
    uint32_t remote_blocks;
    uint32_t remote_bytes;
    uint16_t remote_count[CM_NCLASSES + 1];
    uint64_t requested;                   /* bytes asked of malloc (stats) */
    struct cm_arena *arena;
    struct cm_tcache *next;               /* arena's thread list */
    struct cm_tcache *prev;
    uint8_t state;
};

#endif
