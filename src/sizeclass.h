/* Size classes, generated at start-up from a short rule (see sizeclass.c).
 * Class ids run from 1 to CM_NCLASSES; 0 means "no class". */
#ifndef CM_SIZECLASS_H
#define CM_SIZECLASS_H

#include <stddef.h>

#include "types.h"

#define CM_TINY_CLASSES (CM_TINY_MAX / CM_ALIGNMENT)

_Static_assert(CM_NCLASSES == CM_TINY_CLASSES + 4 * (20 - 7),
               "4 classes per doubling from 128 B to 1 MiB");
_Static_assert(CM_MAX_CLASS_SIZE == (size_t)1 << 20, "largest class is 1 MiB");

/* The block size of class cls, 1 <= cls <= CM_NCLASSES. */
size_t cm_class_size(unsigned cls);

#endif
