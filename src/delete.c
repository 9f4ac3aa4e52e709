/* C++'s operator delete, every variant, exported from the library so that
 * a C++ program's deletes reach cmalloc's free directly instead of going
 * through libstdc++'s. They never throw, so C is enough: each is defined
 * under its mangled name. Sized ones go to the sized free, which checks
 * that the size names the block's class. operator new stays libstdc++'s,
 * which allocates with malloc. */
#include "internal.h"

#define CM_DELETE(name) __asm__(#name) CM_EXPORT

typedef struct cm_nothrow cm_nothrow_t;

void cm_delete(void *p) CM_DELETE(_ZdlPv);
void cm_delete_array(void *p) CM_DELETE(_ZdaPv);
void cm_delete_sized(void *p, size_t n) CM_DELETE(_ZdlPvm);
void cm_delete_array_sized(void *p, size_t n) CM_DELETE(_ZdaPvm);
void cm_delete_nothrow(void *p, const cm_nothrow_t *t) CM_DELETE(_ZdlPvRKSt9nothrow_t);
void cm_delete_array_nothrow(void *p, const cm_nothrow_t *t) CM_DELETE(_ZdaPvRKSt9nothrow_t);
void cm_delete_aligned(void *p, size_t align) CM_DELETE(_ZdlPvSt11align_val_t);
void cm_delete_array_aligned(void *p, size_t align) CM_DELETE(_ZdaPvSt11align_val_t);
void cm_delete_sized_aligned(void *p, size_t n, size_t align) CM_DELETE(_ZdlPvmSt11align_val_t);
void cm_delete_array_sized_aligned(void *p, size_t n, size_t align)
    CM_DELETE(_ZdaPvmSt11align_val_t);
void cm_delete_aligned_nothrow(void *p, size_t align, const cm_nothrow_t *t)
    CM_DELETE(_ZdlPvSt11align_val_tRKSt9nothrow_t);
void cm_delete_array_aligned_nothrow(void *p, size_t align, const cm_nothrow_t *t)
    CM_DELETE(_ZdaPvSt11align_val_tRKSt9nothrow_t);

void cm_delete(void *p)
{
    cm_free(p);
}

void cm_delete_array(void *p)
{
    cm_free(p);
}

void cm_delete_sized(void *p, size_t n)
{
    cm_free_sized(p, n);
}

void cm_delete_array_sized(void *p, size_t n)
{
    cm_free_sized(p, n);
}

void cm_delete_nothrow(void *p, const cm_nothrow_t *t)
{
    (void)t;
    cm_free(p);
}

void cm_delete_array_nothrow(void *p, const cm_nothrow_t *t)
{
    (void)t;
    cm_free(p);
}

void cm_delete_aligned(void *p, size_t align)
{
    (void)align;
    cm_free(p);
}

void cm_delete_array_aligned(void *p, size_t align)
{
    (void)align;
    cm_free(p);
}

void cm_delete_sized_aligned(void *p, size_t n, size_t align)
{
    if (align <= CM_ALIGNMENT)
        cm_free_sized(p, n);
    else
        cm_free_sized_slow(p, n, align);
}

void cm_delete_array_sized_aligned(void *p, size_t n, size_t align)
{
    cm_delete_sized_aligned(p, n, align);
}

void cm_delete_aligned_nothrow(void *p, size_t align, const cm_nothrow_t *t)
{
    (void)align;
    (void)t;
    cm_free(p);
}

void cm_delete_array_aligned_nothrow(void *p, size_t align, const cm_nothrow_t *t)
{
    (void)align;
    (void)t;
    cm_free(p);
}
