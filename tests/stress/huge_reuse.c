/* Huge blocks freed and allocated again, in sizes that go up and down, are
 * served from cmalloc's cache of mappings: calloc must still hand out
 * zeroed memory (the whole block is read), realloc must keep contents, and
 * nothing may leak, which the address space (VmSize) would show: after 600
 * rounds of 5 to 25 MiB blocks it must not exceed its size after the first
 * rounds by more than a few blocks' worth.
 * Exit status 0 on success, 1 with a message otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static size_t vm_size_kib(void)
{
    char line[256];
    size_t kib = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

int main(void)
{
    size_t baseline = 0;
    tu_expect_cmalloc();
    for (int round = 0; round < 600; round++) {
        size_t size = ((size_t)5 + (size_t)(round * 7) % 21) * MiB + (size_t)round * 4099;
        unsigned char *p = calloc(1, tu_opaque(size));
        if (!p) {
            fprintf(stderr, "FAIL: calloc(%zu) returned NULL\n", size);
            return 1;
        }
        size_t nz = tu_first_nonzero(p, size);
        if (nz != (size_t)-1) {
            fprintf(stderr, "FAIL: calloc(%zu) in round %d not zero at %zu\n", size, round, nz);
            return 1;
        }
        tu_fill(p, size, (uint64_t)round);
        if (round % 5 == 0) {
            size_t grown = size + 3 * MiB;
            p = realloc(p, tu_opaque(grown));
            if (!p || tu_verify(p, size, (uint64_t)round) != (size_t)-1) {
                fprintf(stderr, "FAIL: realloc of a reused huge block lost data (round %d)\n", round);
                return 1;
            }
        }
        free(p);
        if (round == 20)
            baseline = vm_size_kib();
    }
    size_t end = vm_size_kib();
    printf("VmSize after 20 rounds: %zu KiB, after 600: %zu KiB\n", baseline, end);
    if (end > baseline + 64 * 1024) {
        fprintf(stderr, "FAIL: address space grew by %zu KiB: huge mappings leak\n", end - baseline);
        return 1;
    }
    return 0;
}
