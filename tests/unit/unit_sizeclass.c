/* Size-class boundary tests.  Linked against the static library
 * (cmalloc_static) so that it can use the internal class table from
 * src/sizeclass.h: CM_NCLASSES classes with ids 1..CM_NCLASSES and
 * cm_class_size(id); blocks above cm_class_size(CM_NCLASSES) come from mmap.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmalloc.h"
#include "internal.h"
#include "sizeclass.h"
#include "testutil.h"
#include "validate_hook.h"

#define NCLS ((unsigned)(CM_NCLASSES))
#define MAX_CLASS_SIZE (cm_class_size(NCLS))

struct blk {
    unsigned char *p;
    size_t n;
    uint64_t id;
};

static int cmp_blk(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct blk *)a)->p;
    uintptr_t y = (uintptr_t)((const struct blk *)b)->p;
    return x < y ? -1 : x > y;
}

/* The request sizes around every class boundary (deduplicated, ascending):
 * size(i)-1, size(i), size(i)+1, plus the same around the mmap limit. */
static size_t boundary_sizes(size_t *out)
{
    size_t n = 0;
    unsigned i;
    int d;
    for (i = 1; i <= NCLS; i++)
        for (d = -1; d <= 1; d++) {
            size_t s = cm_class_size(i) + (size_t)(ptrdiff_t)d;
            if (n == 0 || s > out[n - 1])
                out[n++] = s;
        }
    /* just beyond the largest class: the mmap range */
    out[n++] = MAX_CLASS_SIZE + 2;
    out[n++] = MAX_CLASS_SIZE + 4096;
    out[n++] = 2 * MAX_CLASS_SIZE + 1;
    return n;
}

START_TEST(test_served_by_static_library)
{
    void *p = malloc(tu_opaque(40));
    char *s = strdup("static");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(cmalloc_owns(p), "malloc of the statically linked test is not cmalloc's");
    ck_assert_msg(cmalloc_owns(s), "strdup in libc does not reach the static cmalloc");
    free(s);
    free(p);
}
END_TEST

START_TEST(test_class_table)
{
    unsigned i;
    ck_assert_uint_ge(NCLS, 2);
    ck_assert_uint_gt(cm_class_size(1), 0);
    for (i = 2; i <= NCLS; i++)
        ck_assert_msg(cm_class_size(i) > cm_class_size(i - 1),
                      "class %u (%zu) not larger than class %u (%zu)", i, cm_class_size(i),
                      i - 1, cm_class_size(i - 1));
    /* "about 1 MiB" */
    ck_assert_msg(MAX_CLASS_SIZE >= 256 * KiB && MAX_CLASS_SIZE <= 16 * MiB,
                  "largest class is %zu bytes", MAX_CLASS_SIZE);
}
END_TEST

START_TEST(test_class_boundaries)
{
    size_t *sizes = malloc(sizeof(size_t) * (3 * NCLS + 8));
    struct blk *b;
    size_t n, i;
    ck_assert_ptr_nonnull(sizes);
    n = boundary_sizes(sizes);
    b = malloc(sizeof *b * n);
    ck_assert_ptr_nonnull(b);

    /* all boundary blocks live at once */
    for (i = 0; i < n; i++) {
        size_t usable;
        b[i].n = sizes[i];
        b[i].id = i + 1;
        b[i].p = malloc(tu_opaque(sizes[i]));
        ck_assert_msg(b[i].p != NULL, "malloc(%zu) failed", sizes[i]);
        ck_assert_msg(tu_aligned(b[i].p, 16), "malloc(%zu) = %p not 16-aligned", sizes[i],
                      (void *)b[i].p);
        usable = malloc_usable_size(b[i].p);
        ck_assert_msg(usable >= sizes[i], "malloc(%zu): usable size %zu", sizes[i], usable);
        ck_assert_msg(cmalloc_owns(b[i].p), "malloc(%zu) = %p not owned", sizes[i],
                      (void *)b[i].p);
        memset(b[i].p, 0xEE, usable);  /* every usable byte is writable */
        tu_fill(b[i].p, sizes[i], b[i].id);
    }
    for (i = 0; i < n; i++)
        ck_assert_intact(b[i].p, b[i].n, b[i].id);

    /* distinct, non-overlapping */
    qsort(b, n, sizeof *b, cmp_blk);
    for (i = 1; i < n; i++)
        ck_assert_msg(b[i - 1].p + b[i - 1].n <= b[i].p,
                      "blocks %p (%zu bytes) and %p overlap", (void *)b[i - 1].p, b[i - 1].n,
                      (void *)b[i].p);
    for (i = 0; i < n; i++)
        free(b[i].p);

    /* calloc at every boundary zeroes even recycled memory */
    for (i = 0; i < n; i++) {
        unsigned char *p = malloc(tu_opaque(sizes[i])), *q;
        size_t nz;
        ck_assert_ptr_nonnull(p);
        memset(p, 0xAA, malloc_usable_size(p));
        free(tu_opaque_ptr(p));
        q = calloc(tu_opaque(sizes[i]), 1);
        ck_assert_ptr_nonnull(q);
        nz = tu_first_nonzero(q, sizes[i]);
        ck_assert_msg(nz == (size_t)-1, "calloc(%zu) not zero at %zu", sizes[i], nz);
        free(q);
    }
    free(b);
    free(sizes);
}
END_TEST

START_TEST(test_class_boundaries_aligned)
{
    unsigned i;
    size_t a;
    for (i = 1; i <= NCLS; i++)
        for (a = 32; a <= 4096; a *= 8) {
            size_t n = cm_class_size(i);
            void *p = aligned_alloc(tu_opaque(a), tu_opaque(n));
            ck_assert_msg(p != NULL, "aligned_alloc(%zu, %zu) failed", a, n);
            ck_assert_msg(tu_aligned(p, a), "aligned_alloc(%zu, %zu) = %p", a, n, p);
            ck_assert_uint_ge(malloc_usable_size(p), n);
            memset(p, 1, n);
            free(p);
        }
}
END_TEST

static unsigned char *step(unsigned char *p, size_t *old, size_t new, uint64_t *id)
{
    unsigned char *q = realloc(p, tu_opaque(new));
    size_t keep = *old < new ? *old : new, bad;
    ck_assert_msg(q != NULL, "realloc %zu -> %zu failed", *old, new);
    ck_assert_msg(tu_aligned(q, 16), "realloc %zu -> %zu: %p", *old, new, (void *)q);
    ck_assert_msg(malloc_usable_size(q) >= new, "realloc %zu -> %zu: usable %zu", *old, new,
                  malloc_usable_size(q));
    bad = tu_verify(q, keep, *id);
    ck_assert_msg(bad == (size_t)-1, "realloc %zu -> %zu lost contents at offset %zu", *old,
                  new, bad);
    ck_assert(cmalloc_owns(q));
    (*id)++;
    tu_fill(q, new, *id);
    *old = new;
    return q;
}

START_TEST(test_realloc_every_boundary)
{
    size_t *sizes = malloc(sizeof(size_t) * (3 * NCLS + 8));
    size_t n, i, old = 1;
    uint64_t id = 1;
    unsigned char *p;
    ck_assert_ptr_nonnull(sizes);
    n = boundary_sizes(sizes);
    p = malloc(1);
    ck_assert_ptr_nonnull(p);
    tu_fill(p, 1, id);
    /* up through every boundary into the mmap range ... */
    for (i = 0; i < n; i++)
        if (sizes[i])
            p = step(p, &old, sizes[i], &id);
    p = step(p, &old, 64 * MiB, &id);
    /* ... and back down */
    for (i = n; i-- > 0;)
        if (sizes[i])
            p = step(p, &old, sizes[i], &id);
    /* big jumps: smallest <-> mmap range, and each class <-> the next-but-one */
    for (i = 1; i <= NCLS; i++) {
        p = step(p, &old, cm_class_size(1), &id);
        p = step(p, &old, MAX_CLASS_SIZE + 1, &id);
        p = step(p, &old, cm_class_size((unsigned)i), &id);
        if (i + 2 <= NCLS)
            p = step(p, &old, cm_class_size((unsigned)i + 2) + 1, &id);
    }
    free(p);
    free(sizes);
}
END_TEST

/* free()'s block-start test against plain division: every offset of every
 * class's run, and the same offsets at an arbitrary run address. */
START_TEST(test_block_start_check)
{
    free(malloc(tu_opaque(1))); /* initialise the class table */
    for (unsigned cls = 1; cls <= NCLS; cls++) {
        const struct cm_class *c = &cm_classes[cls];
        size_t run = CM_PAGE_SIZE << c->order;
        uintptr_t base = (uintptr_t)0x7f1234000000 + run * 3;
        for (size_t off = 0; off < run; off++) {
            bool expected = off % c->size == 0 && off / c->size < c->nblocks;
            if (cm_is_block_start(base + off, cls) != expected)
                ck_abort_msg("class %u (size %u, run %zu): offset %zu judged %s", cls, c->size,
                             run, off, expected ? "not a block start" : "a block start");
        }
    }
}
END_TEST

START_TEST(test_realloc_failure_at_boundaries)
{
    unsigned i;
    for (i = 1; i <= NCLS; i += 1) {
        size_t n = cm_class_size(i);
        unsigned char *p = malloc(tu_opaque(n)), *q;
        ck_assert_ptr_nonnull(p);
        tu_fill(p, n, i);
        errno = 0;
        q = realloc(p, tu_opaque(SIZE_MAX - n));
        ck_assert_ptr_null(q);
        ck_assert_int_eq(errno, ENOMEM);
        ck_assert_intact(p, n, i);
        free(p);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cmalloc-sizeclass");
    TCase *tc = tcase_create("boundaries");
    tcase_add_checked_fixture(tc, NULL, tu_validate_heap);
    SRunner *sr;
    int failed;
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_served_by_static_library);
    tcase_add_test(tc, test_class_table);
    tcase_add_test(tc, test_class_boundaries);
    tcase_add_test(tc, test_class_boundaries_aligned);
    tcase_add_test(tc, test_realloc_every_boundary);
    tcase_add_test(tc, test_realloc_failure_at_boundaries);
    tcase_add_test(tc, test_block_start_check);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    tu_validate_heap();
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
