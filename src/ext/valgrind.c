/* Valgrind support: memcheck client requests, so that a program running on
 * cmalloc under memcheck gets the reports it gets on glibc (leaks with
 * their allocation stacks, accesses past a block or after its free, reads
 * of uninitialised memory). hardened.c decides when to make them.
 *
 * The requests are a few no-op instructions off Valgrind, and cmalloc only
 * makes them once cm_guard_init has seen RUNNING_ON_VALGRIND. Under
 * memcheck, the requested bytes of a live block are its only addressable
 * ones; a free block is unaddressable, except for the 16 bytes the core
 * keeps its free-list link in once the block is back in a free list. */
#include <valgrind/memcheck.h>

#include "ext.h"

/* Only memcheck uses the annotations. Under callgrind or cachegrind they
 * would only send every call down the ext paths and skew what those tools
 * measure, so memcheck is told apart from the other tools: it answers
 * VALGRIND_GET_VBITS with 1, a tool that does not know the request with
 * the default, 0. */
bool cm_valgrind_running(void)
{
    if (!RUNNING_ON_VALGRIND)
        return false;
    unsigned char probe = 0, vbits;
    return VALGRIND_GET_VBITS(&probe, &vbits, 1) == 1;
}

void cm_valgrind_alloc(void *p, size_t n, bool zeroed)
{
    VALGRIND_MALLOCLIKE_BLOCK(p, n, 0, zeroed);
}

void cm_valgrind_free(void *p)
{
    VALGRIND_FREELIKE_BLOCK(p, 0);
}

void cm_valgrind_noaccess(const void *p, size_t n)
{
    VALGRIND_MAKE_MEM_NOACCESS(p, n);
}

void cm_valgrind_defined(const void *p, size_t n)
{
    VALGRIND_MAKE_MEM_DEFINED(p, n);
}

void cm_valgrind_undefined(const void *p, size_t n)
{
    VALGRIND_MAKE_MEM_UNDEFINED(p, n);
}

/* Around cmalloc's own reads and writes of a block's metadata, which the
 * program may not touch and so is unaddressable. */
void cm_valgrind_quiet(bool quiet)
{
    if (quiet)
        VALGRIND_DISABLE_ERROR_REPORTING;
    else
        VALGRIND_ENABLE_ERROR_REPORTING;
}
