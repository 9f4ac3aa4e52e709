/* The size-class table.
 *
 * Classes are 16-byte steps up to 128 B, then four per doubling
 * (2^k + j * 2^(k-2), j = 1..4), which bounds internal waste at 25% and
 * matches cm_size_class()'s arithmetic. Each class below
 * CM_SINGLE_BLOCK_MIN gets the smallest run (2^order pages, at least
 * CM_MIN_RUN bytes) that wastes at most 1/8 of itself, and a thread-cache
 * capacity of CM_TCACHE_BYTES (between 1 and 128 blocks). */
#include "internal.h"

#define CM_MIN_RUN (4 * 1024)
/* Blocks of this size or more get a run each, the smallest that holds
 * them: a freed one goes back to the buddy system, where it merges and can
 * serve any other size, instead of waiting in a run of its class. Pages
 * past the block's end are never touched, so the rounding costs address
 * space, not memory. */
#define CM_SINGLE_BLOCK_MIN (16 * 1024)
/* Except that a bin keeps this many bytes of emptied one-block runs (4 KiB
 * up to 32 KiB blocks) for its next mallocs: a program that cycles a few
 * such blocks through the arena would otherwise split and merge buddies,
 * and rewrite the page-class bytes, on every call. */
#define CM_KEEP_EMPTY_BYTES (32 * 1024)
#define CM_TCACHE_BYTES (16 * 1024)
#define CM_TCACHE_MIN 1
/* A new thread's bins start small, so a thread that takes one big block
 * does not hold (and touch) a second one: at most 8 blocks or 4 KiB, and
 * at least 2, so that a refill takes one block. */
#define CM_TCACHE_START_BLOCKS 8
#define CM_TCACHE_START_BYTES 4096

struct cm_hot cm_hot;
struct cm_class cm_classes[CM_NCLASSES + 1];

static size_t class_size_by_rule(unsigned cls)
{
    if (cls <= CM_TINY_CLASSES)
        return (size_t)cls * CM_ALIGNMENT;
    unsigned i = cls - CM_TINY_CLASSES - 1;
    unsigned k = 7 + i / 4;
    return ((size_t)1 << k) + (size_t)(i % 4 + 1) * ((size_t)1 << (k - 2));
}

static unsigned choose_run_order(size_t size)
{
    if (size >= CM_SINGLE_BLOCK_MIN) {
        unsigned order = 0;
        while ((CM_PAGE_SIZE << order) < size)
            order++;
        return order;
    }
    unsigned best = CM_MAX_ORDER;
    size_t best_waste_ratio_num = SIZE_MAX, best_run = 1;
    for (unsigned order = 0; order <= CM_MAX_ORDER; order++) {
        size_t run = CM_PAGE_SIZE << order;
        if (run < size || run < CM_MIN_RUN)
            continue;
        size_t waste = run % size;
        if (waste * 8 <= run)
            return order;
        /* compare waste/run against the best so far without division */
        if (best_waste_ratio_num == SIZE_MAX || waste * best_run < best_waste_ratio_num * run) {
            best = order;
            best_waste_ratio_num = waste;
            best_run = run;
        }
    }
    return best;
}

/* cm_is_block_start's constants: c = floor(2^64 / size) + 1, and e =
 * c * size - 2^64, so block k of the run maps to k * e. */
static void block_check_init(unsigned cls, const struct cm_class *c)
{
    uint64_t size = c->size, magic = UINT64_MAX / size + 1;
    uint64_t e = magic * size;  /* mod 2^64 */
    cm_hot.run_mask[cls] = (uint32_t)(CM_PAGE_SIZE << c->order) - 1;
    cm_hot.div_magic[cls] = magic;
    cm_hot.div_limit[cls] = (uint64_t)(c->nblocks - 1) * e;
}

static size_t cache_capacity(size_t size)
{
    size_t cap = CM_TCACHE_BYTES / size;
    return cap < CM_TCACHE_MIN ? CM_TCACHE_MIN : cap > CM_TCACHE_MAX ? CM_TCACHE_MAX : cap;
}

size_t cm_class_size(unsigned cls)
{
    return cm_classes[cls].size;
}

void cm_sizeclass_init(void)
{
    for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
        struct cm_class *c = &cm_classes[cls];
        size_t size = class_size_by_rule(cls);
        c->size = (uint32_t)size;
        c->order = (uint8_t)choose_run_order(size);
        c->nblocks = (uint32_t)((CM_PAGE_SIZE << c->order) / size);
        size_t cap = cache_capacity(size);
        c->tcache_max = size <= cm_opt.tcache_max_size && !cm_ext.no_thread_cache ? (uint32_t)cap : 0;
        size_t start = CM_TCACHE_START_BYTES / size;
        start = start < 2 ? 2 : start > CM_TCACHE_START_BLOCKS ? CM_TCACHE_START_BLOCKS : start;
        c->tcache_start = start < c->tcache_max ? (uint32_t)start : c->tcache_max;
        c->keep_empty = c->nblocks == 1 ? (uint32_t)(CM_KEEP_EMPTY_BYTES >> (CM_PAGE_SHIFT + c->order)) : 0;
        block_check_init(cls, c);
    }
    /* The smallest class that fits each size. Size 0 maps to no class: its
     * bin is always disabled, so malloc(0) takes the slow path. */
    unsigned cls = 1;
    cm_hot.class_of[0] = 0;
    for (size_t n = 1; n <= CM_LOOKUP_MAX; n++) {
        while (cm_classes[cls].size < n)
            cls++;
        cm_hot.class_of[n] = (uint8_t)cls;
    }
    for (size_t i = 0; i <= CM_LOOKUP2_MAX >> CM_LOOKUP2_SHIFT; i++) {
        size_t n = i << CM_LOOKUP2_SHIFT;
        while (cm_classes[cls].size < n)
            cls++;
        cm_hot.class_of_medium[i] = (uint8_t)(n <= CM_LOOKUP_MAX ? 0 : cls);
    }
}
