/* Memory of aligned blocks goes back to the kernel at free, as glibc's does:
 * 2,000 memalign(1 MiB, 1), each touched, then all freed, must leave
 * neither resident memory nor address space behind, without malloc_trim.
 * Read from /proc/self/statm (total and resident pages). */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"

/* 2,000 mappings of about 2 MiB each are more than a 32-bit process's
 * address space: 500 there. */
#define N (sizeof(void *) == 8 ? 2000 : 500)

static void statm(size_t *size, size_t *resident)
{
    FILE *f = fopen("/proc/self/statm", "r");
    TU_CHECK(f != NULL, "cannot open /proc/self/statm");
    TU_CHECK(fscanf(f, "%zu %zu", size, resident) == 2, "cannot read /proc/self/statm");
    fclose(f);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    *size *= page;
    *resident *= page;
}

int main(void)
{
    static char *blocks[N];
    size_t size0, rss0, size1, rss1, size2, rss2;
    tu_expect_cmalloc();
    statm(&size0, &rss0);
    for (int i = 0; i < N; i++) {
        blocks[i] = memalign(tu_opaque((size_t)1 << 20), tu_opaque(1));
        TU_CHECK(blocks[i] != NULL, "memalign(1 MiB, 1) failed at %d", i);
        TU_CHECK(((uintptr_t)blocks[i] & ((1u << 20) - 1)) == 0, "block %p misaligned",
                 (void *)blocks[i]);
        blocks[i][0] = (char)i;
    }
    statm(&size1, &rss1);
    for (int i = 0; i < N; i++) {
        TU_CHECK(blocks[i][0] == (char)i, "block %d changed", i);
        free(blocks[i]);
    }
    statm(&size2, &rss2);
    printf("aligned_return: address space %zu -> %zu -> %zu KiB, resident %zu -> %zu -> %zu KiB\n",
           size0 >> 10, size1 >> 10, size2 >> 10, rss0 >> 10, rss1 >> 10, rss2 >> 10);
    /* What stays may be a few pages of bookkeeping, nothing per block. */
    TU_CHECK(rss2 <= rss0 + ((size_t)2 << 20), "%zu KiB still resident after the frees",
             (rss2 - rss0) >> 10);
    TU_CHECK(size2 <= size0 + ((size_t)16 << 20), "%zu MiB of address space still held",
             (size2 - size0) >> 20);
    return 0;
}
