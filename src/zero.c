/* Zero-size blocks: malloc(0), and every other request of 0 bytes that
 * needs no alignment above a page, gets an address of its own in a region
 * that is reserved once and never made accessible, so that a read or write
 * through it faults at once instead of reaching a neighbour's data.
 *
 * The region holds 2^20 such addresses, 16 bytes apart; a bitmap beside it
 * says which are handed out, so free sees a double free of one, and no two
 * live zero-size blocks share an address. Addresses are handed out from a
 * cursor that moves on, so a freed one does not come straight back. The
 * bitmap is changed with atomic operations only: no lock, nothing for fork
 * to do. When the region cannot be mapped, or every address is taken, a
 * zero-size request falls back to a block of the smallest class.
 *
 * Requests reach here only from slow paths: size 0 has no class on the
 * fast path (its cache bin is always disabled), and free reaches
 * cm_zero_free only after the segment map found no block of ours. */
#include "internal.h"

#define ZERO_REGION_SIZE ((size_t)16 << 20)
#define ZERO_SLOT_SHIFT 4
#define ZERO_SLOTS (ZERO_REGION_SIZE >> ZERO_SLOT_SHIFT)
#define ZERO_BITMAP_SIZE (ZERO_SLOTS / 8)

_Static_assert(CM_ZERO_MAX_ALIGN <= CM_PAGE_SIZE, "the region is page-aligned");

/* The region, followed by its bitmap (one bit per address, set while it is
 * handed out); NULL until the first zero-size request. */
static char *region;
static size_t cursor;

static uint64_t *bitmap_of(char *base)
{
    return (uint64_t *)(void *)(base + ZERO_REGION_SIZE);
}

static char *zero_region(void)
{
    char *base = __atomic_load_n(&region, __ATOMIC_ACQUIRE);
    if (cm_likely(base != NULL))
        return base;
    char *m = cm_prim_map(ZERO_REGION_SIZE + ZERO_BITMAP_SIZE);
    if (!m)
        return NULL;
    if (!cm_prim_protect(m, ZERO_REGION_SIZE, false)) {
        cm_prim_unmap(m, ZERO_REGION_SIZE + ZERO_BITMAP_SIZE);
        return NULL;
    }
    if (__atomic_compare_exchange_n(&region, &base, m, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
        return m;
    /* Another thread mapped it first: base is now its region. */
    cm_prim_unmap(m, ZERO_REGION_SIZE + ZERO_BITMAP_SIZE);
    return base;
}

void *cm_zero_alloc(size_t align)
{
    char *base = zero_region();
    if (!base)
        return NULL;
    uint64_t *bitmap = bitmap_of(base);
    size_t step = align > ((size_t)1 << ZERO_SLOT_SHIFT) ? align >> ZERO_SLOT_SHIFT : 1;
    size_t start = __atomic_load_n(&cursor, __ATOMIC_RELAXED) & ~(step - 1);
    for (size_t k = 0; k < ZERO_SLOTS; k += step) {
        size_t i = (start + k) & (ZERO_SLOTS - 1);
        uint64_t *word = &bitmap[i / 64], bit = (uint64_t)1 << (i % 64);
        uint64_t now = __atomic_load_n(word, __ATOMIC_RELAXED);
        if (now == ~(uint64_t)0 && step < 64) {
            k += 64 - i % 64 - step;  /* to the next word */
            continue;
        }
        if (now & bit)
            continue;
        if (!(__atomic_fetch_or(word, bit, __ATOMIC_ACQ_REL) & bit)) {
            __atomic_store_n(&cursor, (i + step) & (ZERO_SLOTS - 1), __ATOMIC_RELAXED);
            return base + (i << ZERO_SLOT_SHIFT);
        }
    }
    return NULL;
}

bool cm_zero_holds(const void *p)
{
    char *base = __atomic_load_n(&region, __ATOMIC_ACQUIRE);
    return base && (uintptr_t)p - (uintptr_t)base < ZERO_REGION_SIZE;
}

/* p is in the region (cm_zero_holds). Whether it is handed out. */
bool cm_zero_is_live(const void *p)
{
    size_t off = (uintptr_t)p - (uintptr_t)region;
    if (off & (((size_t)1 << ZERO_SLOT_SHIFT) - 1))
        return false;
    size_t i = off >> ZERO_SLOT_SHIFT;
    return __atomic_load_n(&bitmap_of(region)[i / 64], __ATOMIC_RELAXED) >> (i % 64) & 1;
}

void cm_zero_free(const char *fn, const void *p)
{
    size_t off = (uintptr_t)p - (uintptr_t)region;
    if (off & (((size_t)1 << ZERO_SLOT_SHIFT) - 1))
        cm_invalid_pointer(fn, p);
    size_t i = off >> ZERO_SLOT_SHIFT;
    uint64_t bit = (uint64_t)1 << (i % 64);
    if (!(__atomic_fetch_and(&bitmap_of(region)[i / 64], ~bit, __ATOMIC_ACQ_REL) & bit))
        cm_fatal("%s(): double free of %p (a zero-size block)", fn, p);
}

void *cm_zero_realloc(void *p, size_t n, void *(*alloc)(size_t n))
{
    if (!cm_zero_is_live(p))
        cm_invalid_pointer("realloc", p);
    void *q = alloc(n);
    if (q)
        cm_zero_free("realloc", p);
    return q;
}
