/* The public entry points: the glibc malloc family with glibc's semantics
 * and errno, the aliases glibc and static links look for, and cmalloc's own
 * API. This is the only file that exports symbols. */
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmalloc.h"
#include "internal.h"

/* Declared here because glibc 2.36's headers lack them. */
CM_EXPORT void cfree(void *p);
CM_EXPORT void free_sized(void *p, size_t size);
CM_EXPORT void free_aligned_sized(void *p, size_t align, size_t size);

CM_COLD _Noreturn void cm_invalid_pointer(const char *fn, const void *p)
{
    if (cm_huge_is_cached(p))
        cm_fatal("%s(): double free of %p (a huge block)", fn, p);
    cm_fatal("%s(): invalid pointer %p", fn, p);
}

static void *enomem(void)
{
    errno = ENOMEM;
    return NULL;
}

/* Where a block lives, checked: a NULL segment means the pointer is not the
 * start of a block of ours; cls is 0 for a huge block. */
struct cm_block_info cm_locate(const void *p)
{
    struct cm_block_info info = {NULL, 0};
    uintptr_t addr = (uintptr_t)p;
    unsigned tag = cm_segmap_tag(addr);
    if (!tag) {
        info.segment = cm_huge_find_aligned(p);
        return info;
    }
    struct cm_segment *s = cm_segment_of(p);
    if (tag == CM_TAG_HUGE) {
        if (addr == (uintptr_t)s + s->block_offset)
            info.segment = s;
        return info;
    }
    unsigned cls = s->page_cls[cm_page_index(p)];
    if (cls && cm_is_block_start(addr, cls)) {
        info.segment = s;
        info.cls = cls;
    }
    return info;
}

static size_t usable_size(struct cm_block_info info)
{
    return info.cls ? cm_classes[info.cls].size : cm_huge_usable(info.segment);
}

struct cm_block_info cm_locate_or_die(const char *fn, const void *p)
{
    struct cm_block_info info = cm_locate(p);
    if (!info.segment)
        cm_invalid_pointer(fn, p);
    return info;
}

size_t cm_core_usable(const void *p)
{
    if (cm_zero_holds(p)) {
        if (!cm_zero_is_live(p))
            cm_invalid_pointer("malloc_usable_size", p);
        return 0;
    }
    return usable_size(cm_locate_or_die("malloc_usable_size", p));
}

/* malloc and free reach the features through their slow paths only: the
 * countdown and the thread's tag send them there (tcache.c). */
CM_EXPORT void *malloc(size_t n)
{
    return cm_alloc(n);
}

CM_EXPORT void free(void *p)
{
    cm_free(p);
}

CM_EXPORT void *calloc(size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total))
        return enomem();
    if (cm_unlikely(cm_ext_calls()))
        return cm_ext.alloc(total, 0, CMALLOC_FN_CALLOC);
    void *p = cm_alloc(total);
    /* A zero-size block is not to be touched. */
    if (p && total)
        cm_zero_new_block(p, total);
    return p;
}

static void *realloc_move(void *p, size_t old_usable, size_t n)
{
    cm_count_request(n);
    void *q = cm_cache_alloc(n);
    if (!q)
        return NULL;
    memcpy(q, p, old_usable < n ? old_usable : n);
    cm_free(p);
    return q;
}

/* The core realloc: in place when the class or the mapping allows. */
void *cm_core_realloc(void *p, size_t n)
{
    if (!p)
        return cm_alloc(n);
    if (n == 0) {
        cm_free(p);
        return NULL;
    }
    if (cm_zero_holds(p))
        return cm_zero_realloc(p, n, cm_alloc);
    struct cm_block_info info = cm_locate_or_die("realloc", p);
    if (n > (size_t)PTRDIFF_MAX)
        return enomem();
    if (info.cls) {
        const struct cm_class *c = &cm_classes[info.cls];
        if (n <= CM_MAX_CLASS_SIZE) {
            unsigned cls = cm_size_class(n);
            if (cls == info.cls)
                return p;
            /* A block alone in its run may take any size the run holds. */
            const struct cm_class *target = &cm_classes[cls];
            if (c->nblocks == 1 && target->nblocks == 1 && target->order == c->order &&
                cm_arena_reclass(info.segment, p, info.cls, cls))
                return p;
        }
        return realloc_move(p, c->size, n);
    }
    if (cm_maps_own(n))
        return cm_huge_realloc(info.segment, n);
    return realloc_move(p, cm_huge_usable(info.segment), n);
}

CM_EXPORT void *realloc(void *p, size_t n)
{
    if (cm_unlikely(cm_ext_calls()))
        return cm_ext.realloc(p, n);
    return cm_core_realloc(p, n);
}

CM_EXPORT void *reallocarray(void *p, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total))
        return enomem();
    return realloc(p, total);
}

/* Alignments above this get a mapping of their own, as in glibc (whose
 * mmap threshold they pass): a class block would take a run at least as
 * large as the alignment, whatever the size asked, and a run of such blocks
 * keeps its segment's address space until malloc_trim, where a mapping goes
 * back whole at free. */
#define CM_ALIGN_OWN_MAPPING ((size_t)64 << 10)

/* The smallest class whose blocks all have the alignment: its size is a
 * multiple of it and its runs (aligned to their own size) are too. */
unsigned cm_aligned_class(size_t align, size_t n)
{
    size_t need = n > align ? n : align;
    if (need > CM_MAX_CLASS_SIZE || (align > CM_ALIGN_OWN_MAPPING && cm_huge_may_map()))
        return 0;
    for (unsigned cls = cm_size_class(need); cls <= CM_NCLASSES; cls++) {
        const struct cm_class *c = &cm_classes[cls];
        if (cm_maps_own(c->size))
            return 0;
        if (c->size % align == 0 && (CM_PAGE_SIZE << c->order) % align == 0)
            return cls;
    }
    return 0;
}

/* align is a power of two. Not counted in the statistics: callers do. */
void *cm_alloc_aligned(size_t align, size_t n)
{
    if (align <= CM_ALIGNMENT)
        return cm_cache_alloc(n);
    if (n == 0 && align <= CM_ZERO_MAX_ALIGN) {
        void *z = cm_zero_alloc(align);
        if (z)
            return z;
    }
    cm_ensure_init();
    unsigned cls = cm_aligned_class(align, n);
    if (cls)
        return cm_cache_alloc(cm_classes[cls].size);
    return cm_huge_alloc(n, align);
}

/* glibc's _mid_memalign: alignments up to 16 are free, a non-power of two
 * is rounded up, and one that cannot be a power of two is EINVAL. */
static void *cm_memalign(size_t align, size_t n)
{
    if (align <= CM_ALIGNMENT) {
        align = 0;
    } else if (align > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    } else if (align & (align - 1)) {
        size_t pow2 = CM_ALIGNMENT * 2;
        while (pow2 < align)
            pow2 <<= 1;
        align = pow2;
    }
    if (align && n > (size_t)PTRDIFF_MAX - align)
        return enomem();
    if (cm_unlikely(cm_ext_calls()))
        return cm_ext.alloc(n, align, CMALLOC_FN_MEMALIGN);
    cm_count_request(n);
    return cm_alloc_aligned(align, n);
}

CM_EXPORT void *memalign(size_t align, size_t n)
{
    return cm_memalign(align, n);
}

/* glibc 2.36 implements aligned_alloc as memalign. */
CM_EXPORT void *aligned_alloc(size_t align, size_t n)
{
    return cm_memalign(align, n);
}

CM_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    if (align == 0 || align % sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    /* Like glibc's, a failure leaves errno at ENOMEM as well. */
    void *p = cm_memalign(align, n);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

CM_EXPORT void *valloc(size_t n)
{
    return cm_memalign(CM_PAGE_SIZE, n);
}

CM_EXPORT void *pvalloc(size_t n)
{
    if (n > SIZE_MAX - CM_PAGE_SIZE)
        return enomem();
    size_t rounded = (n + CM_PAGE_SIZE - 1) & ~(CM_PAGE_SIZE - 1);
    return cm_memalign(CM_PAGE_SIZE, rounded ? rounded : CM_PAGE_SIZE);
}

CM_EXPORT size_t malloc_usable_size(void *p)
{
    if (!p)
        return 0;
    if (cm_unlikely(cm_ext_calls()))
        return cm_ext.usable(p);
    return cm_core_usable(p);
}

CM_EXPORT int malloc_trim(size_t pad)
{
    (void)pad;
    cm_ensure_init();
    struct cm_tcache *tc = cm_tcache_get();
    if (tc->state == CM_TC_ACTIVE)
        cm_tcache_flush_all(tc);
    return cm_trim_all();
}

CM_EXPORT int mallopt(int param, int value)
{
    cm_ensure_init();
    return cm_options_mallopt(param, value);
}

CM_EXPORT struct mallinfo2 mallinfo2(void)
{
    return cm_stats_mallinfo2();
}

CM_EXPORT struct mallinfo mallinfo(void)
{
    struct mallinfo2 m2 = cm_stats_mallinfo2();
    struct mallinfo m = {
        .arena = (int)m2.arena,
        .ordblks = (int)m2.ordblks,
        .smblks = (int)m2.smblks,
        .hblks = (int)m2.hblks,
        .hblkhd = (int)m2.hblkhd,
        .usmblks = (int)m2.usmblks,
        .fsmblks = (int)m2.fsmblks,
        .uordblks = (int)m2.uordblks,
        .fordblks = (int)m2.fordblks,
        .keepcost = (int)m2.keepcost,
    };
    return m;
}

CM_EXPORT void malloc_stats(void)
{
    cm_stats_print_fd(STDERR_FILENO);
}

CM_EXPORT int malloc_info(int options, FILE *fp)
{
    return cm_stats_malloc_info(options, fp);
}

CM_EXPORT void free_sized(void *p, size_t size)
{
    cm_free_sized(p, size);
}

CM_EXPORT void free_aligned_sized(void *p, size_t align, size_t size)
{
    if (align <= CM_ALIGNMENT)
        cm_free_sized(p, size);
    else
        cm_free_sized_slow(p, size, align);
}

/* The names glibc uses internally and that static links resolve. */
#if __has_attribute(copy)
#define CM_ALIAS(name) __attribute__((alias(#name), copy(name), visibility("default")))
#else
#define CM_ALIAS(name) __attribute__((alias(#name), visibility("default")))
#endif
void *__libc_malloc(size_t n) CM_ALIAS(malloc);
/* This copy's own malloc, whatever the process's resolves to (init.c). */
#if __has_attribute(copy)
void *cm_own_malloc(size_t n) __attribute__((alias("malloc"), copy(malloc)));
#else
void *cm_own_malloc(size_t n) __attribute__((alias("malloc")));
#endif
void __libc_free(void *p) CM_ALIAS(free);
void *__libc_calloc(size_t count, size_t size) CM_ALIAS(calloc);
void *__libc_realloc(void *p, size_t n) CM_ALIAS(realloc);
void *__libc_memalign(size_t align, size_t n) CM_ALIAS(memalign);
void *__libc_valloc(size_t n) CM_ALIAS(valloc);
void *__libc_pvalloc(size_t n) CM_ALIAS(pvalloc);
int __posix_memalign(void **out, size_t align, size_t n) CM_ALIAS(posix_memalign);
void cfree(void *p) CM_ALIAS(free);

CM_EXPORT const char *cmalloc_version(void)
{
    return CMALLOC_VERSION_STRING;
}

CM_EXPORT int cmalloc_owns(const void *p)
{
    if (!p)
        return 0;
    struct cm_block_info info = cm_locate(p);
    if (!info.segment)
        return cm_zero_holds(p) && cm_zero_is_live(p);
    if (cm_unlikely(cm_ext_mode() & CM_EXT_FREES))
        return cm_ext.owns(p);
    if (info.cls && ((const struct cm_block *)p)->free_key == cm_hot.free_key &&
        cm_block_is_free(&cm_tls, info.segment, (void *)p, info.cls))
        return 0;
    return 1;
}
