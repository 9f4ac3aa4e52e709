/* cmalloc: a drop-in replacement for the glibc malloc family.
 *
 * The malloc family itself (malloc, free, calloc, ...) is declared by
 * <stdlib.h> and <malloc.h>; this header adds cmalloc's own API. */
#ifndef CMALLOC_H
#define CMALLOC_H

#include <stddef.h>

#define CMALLOC_VERSION_MAJOR 1
#define CMALLOC_VERSION_MINOR 0
#define CMALLOC_VERSION_PATCH 0
#define CMALLOC_VERSION_STRING "1.0.0"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library actually loaded, which may differ from the
 * CMALLOC_VERSION_STRING this program was compiled against. */
const char *cmalloc_version(void);

/* Non-zero when ptr is the start of a live block that cmalloc handed out.
 * Lets a program (or a test) tell whether cmalloc really serves it. A block
 * freed by another thread may still count as live while it waits in that
 * thread's cache. Never crashes on a pointer that is not cmalloc's. */
int cmalloc_owns(const void *ptr);

#ifdef __cplusplus
}
#endif

#endif
