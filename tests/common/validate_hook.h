/* The heap validator as a hook for test programs: tu_validate_heap() runs
 * cmalloc_debug_validate, which only debug builds of cmalloc
 * (-DCMALLOC_DEBUG=ON) export, and aborts the program when it reports a
 * broken invariant (cmalloc has printed which one). Against a release
 * build, or when the program runs on another allocator, it does nothing,
 * so the same test runs everywhere.
 *
 * The function is found with dlsym(RTLD_DEFAULT, ...) (the shared library,
 * linked or preloaded) or through a weak reference (cmalloc's objects
 * linked into the program: the fuzz harness; a static link, which pulls
 * validate.o out of libcmalloc.a only when the program is linked with
 * -Wl,--undefined=cmalloc_debug_validate).
 *
 * Call it when no other thread is allocating or freeing (after joining the
 * test's threads): the validator reads the other threads' caches without
 * their cooperation. */
#ifndef CMALLOC_VALIDATE_HOOK_H
#define CMALLOC_VALIDATE_HOOK_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

extern int cmalloc_debug_validate(void) __attribute__((weak));

typedef int (*tu_validate_fn)(void);

/* cmalloc's validator, or NULL; looked up once. */
static inline tu_validate_fn tu_validator(void)
{
    static tu_validate_fn fn;
    static int looked_up;
    if (!looked_up) {
        /* The POSIX way to turn dlsym's object pointer into a function
         * pointer. */
        *(void **)&fn = dlsym(RTLD_DEFAULT, "cmalloc_debug_validate");
        if (!fn)
            fn = cmalloc_debug_validate;
        looked_up = 1;
    }
    return fn;
}

/* Whether the program runs on a cmalloc that can validate its heap. */
static inline int tu_can_validate_heap(void)
{
    return tu_validator() != NULL;
}

static inline void tu_validate_heap(void)
{
    tu_validate_fn fn = tu_validator();
    if (fn && fn() != 0) {
        fputs("tu_validate_heap: cmalloc's heap validator found a broken invariant (above)\n",
              stderr);
        fflush(stderr);
        abort();
    }
}

#endif
