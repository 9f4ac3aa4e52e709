/* Internal assertions and the heap validator, levelled by CMALLOC_DEBUG.
 *
 *   CM_DEBUG 0  release: every check below compiles to nothing
 *   CM_DEBUG 1  cm_assert: cheap O(1) checks on slow paths
 *   CM_DEBUG 2  + cm_assert_internal: checks on every slow operation next
 *               to the fast paths (refill, flush, remote push, run carve)
 *   CM_DEBUG 3  + cm_assert_expensive and CM_DEBUG_CHECK_ARENA: walks of
 *               whole structures, the arena validator after every arena
 *               operation
 *
 * CMALLOC_DEBUG defined empty (#define CMALLOC_DEBUG, or -DCMALLOC_DEBUG=)
 * means level 2; the build passes the level explicitly. (A bare
 * -DCMALLOC_DEBUG on the compiler's command line defines it as 1, and so
 * means level 1.) Disabled checks do not evaluate
 * their expression but still type-check it (it sits in a sizeof), so a
 * variable used only in a check is not reported as unused and a check
 * cannot rot in release builds.
 *
 * A failed check prints "cmalloc: assertion failed: EXPR (FILE:LINE,
 * FUNCTION)" with the allocation-free formatter and aborts. Nothing here
 * allocates or uses stdio, so checks may sit anywhere, under any lock.
 *
 * The validator itself is in validate.c, compiled in debug builds only. */
#ifndef CM_DEBUG_H
#define CM_DEBUG_H

#include <stdbool.h>
#include <stddef.h>

#ifndef CMALLOC_DEBUG
#define CM_DEBUG 0
#elif (-CMALLOC_DEBUG - 1) == 1
/* Defined empty: the test reads (- - 1) == 1, which no number makes true. */
#define CM_DEBUG 2
#else
#define CM_DEBUG (CMALLOC_DEBUG)
#endif

#if CM_DEBUG < 0 || CM_DEBUG > 3
#error "CMALLOC_DEBUG must be 0, 1, 2 or 3"
#endif

#pragma GCC visibility push(hidden)

struct cm_arena;

#if CM_DEBUG > 0
/* Prints the failed check and aborts (validate.c). */
__attribute__((cold, noinline, noreturn)) void cm_assert_fail(const char *expr,
                                                               const char *file,
                                                               int line,
                                                               const char *func);

/* Checks the structures arena a's lock protects (segments, runs, free
 * runs, bins, counters), with that lock held by the caller, and aborts
 * naming the first broken invariant. Thread caches and remote stacks are
 * left out: other threads change them without the lock. */
void cm_debug_check_arena(struct cm_arena *a);

#define CM_ASSERT_ON_(expr) \
    (__builtin_expect(!!(expr), 1) ? (void)0 : cm_assert_fail(#expr, __FILE__, __LINE__, __func__))
#endif

#define CM_ASSERT_OFF_(expr) ((void)sizeof(!(expr)))

#if CM_DEBUG >= 1
#define cm_assert(expr) CM_ASSERT_ON_(expr)
#else
#define cm_assert(expr) CM_ASSERT_OFF_(expr)
#endif

#if CM_DEBUG >= 2
#define cm_assert_internal(expr) CM_ASSERT_ON_(expr)
#else
#define cm_assert_internal(expr) CM_ASSERT_OFF_(expr)
#endif

#if CM_DEBUG >= 3
#define cm_assert_expensive(expr) CM_ASSERT_ON_(expr)
/* At a point where arena a is consistent and its lock is held (just
 * before the unlock of an arena operation). */
#define CM_DEBUG_CHECK_ARENA(a) cm_debug_check_arena(a)
#else
#define cm_assert_expensive(expr) CM_ASSERT_OFF_(expr)
#define CM_DEBUG_CHECK_ARENA(a) ((void)sizeof(a))
#endif

/* The heap validator (validate.c; debug builds only). Checks every arena,
 * core arenas by index and then the features' arenas, each with its lock
 * held in turn, with the invariants types.h states: segments, the buddy
 * layout, free runs, runs of blocks and their free lists, bins, the
 * thread caches attached to each arena and their remote lists, and the
 * arenas' remote stacks. Returns true when everything holds; otherwise
 * writes one line naming the first broken invariant into why (cap bytes,
 * always NUL-terminated when cap > 0) and returns false.
 *
 * It only reads, and never crashes on corrupted state where a check can
 * avoid it: a pointer is dereferenced only once the segment map says it
 * lies in a segment of the right arena. The thread caches and remote
 * stacks are read without their owners' cooperation, so the result is
 * only reliable while no other thread is allocating or freeing (a test's
 * teardown, after its threads have stopped). The caller must hold no
 * arena lock. */
bool cm_heap_validate(char *why, size_t cap);

/* Checks one arena as cm_heap_validate does, with its lock held by the
 * caller; with_threads adds its thread caches and remote stacks (only
 * reliable when other threads are quiescent). */
bool cm_arena_validate_locked(struct cm_arena *a, bool with_threads, char *why, size_t cap);

#pragma GCC visibility pop

#if CM_DEBUG > 0
/* Exported from debug builds only (cmalloc_* in cmalloc.map), for tests
 * that find it with dlsym(RTLD_DEFAULT, "cmalloc_debug_validate"):
 * cm_heap_validate, printing the broken invariant with cm_message. Returns
 * 0 when the heap is sound, -1 otherwise. */
__attribute__((visibility("default"))) int cmalloc_debug_validate(void);
#endif

#endif
