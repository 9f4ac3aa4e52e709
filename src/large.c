/* Huge blocks: requests above the largest size class or the mmap threshold
 * get a mapping of their own, unmapped on free.
 *
 * The mapping is a huge segment: 4 MiB aligned, with a one-page header
 * (more when the block needs a larger alignment) before the block, so free()
 * finds it by masking like any other block. Growing one moves its pages with
 * mremap instead of copying them.
 *
 * An alignment of 4 MiB or more would put the block itself on the granule
 * boundary where the header belongs. Such blocks keep their header one
 * alignment unit before the block, leave the block's granule unmarked in the
 * segment map, and are found through a short registry instead; they are rare
 * enough that a locked list is the right structure. */
#include <errno.h>
#include <string.h>

#include "internal.h"

static struct cm_segment *aligned_registry;  /* under cm_heap_lock */

static size_t huge_count, huge_bytes, huge_max_count, huge_max_bytes;

static size_t page_round(size_t n)
{
    return (n + CM_PAGE_SIZE - 1) & ~(CM_PAGE_SIZE - 1);
}

static void account(ptrdiff_t count, ptrdiff_t bytes)
{
    size_t c = __atomic_add_fetch(&huge_count, (size_t)count, __ATOMIC_RELAXED);
    size_t b = __atomic_add_fetch(&huge_bytes, (size_t)bytes, __ATOMIC_RELAXED);
    size_t m = __atomic_load_n(&huge_max_count, __ATOMIC_RELAXED);
    while (c > m && !__atomic_compare_exchange_n(&huge_max_count, &m, c, true,
                                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    m = __atomic_load_n(&huge_max_bytes, __ATOMIC_RELAXED);
    while (b > m && !__atomic_compare_exchange_n(&huge_max_bytes, &m, b, true,
                                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

void cm_huge_stats_get(struct cm_huge_stats *out)
{
    out->count = __atomic_load_n(&huge_count, __ATOMIC_RELAXED);
    out->bytes = __atomic_load_n(&huge_bytes, __ATOMIC_RELAXED);
    out->max_count = __atomic_load_n(&huge_max_count, __ATOMIC_RELAXED);
    out->max_bytes = __atomic_load_n(&huge_max_bytes, __ATOMIC_RELAXED);
}

/* align is 0 or a power of two. */
void *cm_huge_alloc(size_t n, size_t align)
{
    size_t offset = align > CM_PAGE_SIZE ? align : CM_PAGE_SIZE;
    if (n > (size_t)PTRDIFF_MAX - offset - CM_SEG_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t map_size = page_round(offset + n);
    size_t map_align = offset >= CM_SEG_SIZE ? offset : CM_SEG_SIZE;
    struct cm_segment *s = cm_os_map_aligned(map_size, map_align);
    /* Address space may be held by free heap segments (RLIMIT_AS). */
    if (!s && cm_trim_all())
        s = cm_os_map_aligned(map_size, map_align);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    s->kind = CM_SEG_HUGE;
    s->map_size = map_size;
    s->block_offset = offset;
    if (offset >= CM_SEG_SIZE) {
        cm_lock(&cm_heap_lock);
        s->next = aligned_registry;
        aligned_registry = s;
        cm_unlock(&cm_heap_lock);
    } else {
        cm_segmap_set(s, CM_SEG_HUGE);
    }
    account(1, (ptrdiff_t)map_size);
    return (char *)s + offset;
}

struct cm_segment *cm_huge_find_aligned(const void *p)
{
    struct cm_segment *found = NULL;
    if (!__atomic_load_n(&aligned_registry, __ATOMIC_RELAXED))
        return NULL;
    cm_lock(&cm_heap_lock);
    for (struct cm_segment *s = aligned_registry; s && !found; s = s->next) {
        if ((const char *)s + s->block_offset == p)
            found = s;
    }
    cm_unlock(&cm_heap_lock);
    return found;
}

void cm_huge_free(struct cm_segment *s)
{
    if (s->block_offset >= CM_SEG_SIZE) {
        cm_lock(&cm_heap_lock);
        struct cm_segment **link = &aligned_registry;
        while (*link != s)
            link = &(*link)->next;
        *link = s->next;
        cm_unlock(&cm_heap_lock);
    } else {
        cm_segmap_clear(s);
    }
    account(-1, -(ptrdiff_t)s->map_size);
    cm_os_unmap(s, s->map_size);
}

size_t cm_huge_usable(const struct cm_segment *s)
{
    return s->map_size - s->block_offset;
}

/* Resizes a huge block that stays huge. Returns NULL (with errno ENOMEM)
 * when it cannot, leaving the block as it was. */
void *cm_huge_realloc(struct cm_segment *s, size_t n)
{
    if (n > (size_t)PTRDIFF_MAX - s->block_offset - CM_SEG_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t old_size = s->map_size;
    size_t new_size = page_round(s->block_offset + n);
    if (new_size == old_size)
        return (char *)s + s->block_offset;
    if (cm_os_resize_in_place(s, old_size, new_size)) {
        s->map_size = new_size;
        account(0, (ptrdiff_t)new_size - (ptrdiff_t)old_size);
        return (char *)s + s->block_offset;
    }
    if (s->block_offset >= CM_SEG_SIZE) {
        /* Registry blocks are too rare to deserve a move of their own. */
        void *q = cm_huge_alloc(n, s->block_offset);
        if (!q)
            return NULL;
        memcpy(q, (char *)s + s->block_offset, old_size - s->block_offset);
        cm_huge_free(s);
        return q;
    }
    /* Unmark the old place before mremap releases it: another thread's new
     * mapping may land there at once and mark it as its own. */
    cm_segmap_clear(s);
    struct cm_segment *moved = cm_os_move_aligned(s, old_size, new_size, CM_SEG_SIZE);
    if (!moved) {
        cm_segmap_set(s, CM_SEG_HUGE);
        errno = ENOMEM;
        return NULL;
    }
    moved->map_size = new_size;
    cm_segmap_set(moved, CM_SEG_HUGE);
    account(0, (ptrdiff_t)new_size - (ptrdiff_t)old_size);
    return (char *)moved + moved->block_offset;
}
