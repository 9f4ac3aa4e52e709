/* TEMPORARY pass-through guards, replaced by hardened.c and valgrind.c. */
#include <string.h>

#include "internal.h"

void cm_guard_init(void)
{
}

size_t cm_guard_request(size_t n)
{
    return n;
}

void *cm_guard_after_alloc(void *p, size_t n, bool zero)
{
    if (zero)
        memset(p, 0, n);
    return p;
}

bool cm_guard_before_free(void *p)
{
    (void)p;
    return true;
}

size_t cm_guard_usable(void *p, size_t core_usable)
{
    (void)p;
    return core_usable;
}
