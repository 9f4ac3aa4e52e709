/* A steady-state loop for the syscall test: a million malloc/free pairs of
 * small and medium blocks (16 B to 64 KiB, every size class in that range)
 * with a window of live blocks, so every call is served from memory the
 * allocator already holds.  steady_syscalls.sh counts its system calls. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define WINDOW 256
#define PAIRS 1000000

int main(void)
{
    static unsigned char *live[WINDOW];
    uint32_t x = 88172645u;
    unsigned long sum = 0;
    for (long i = 0; i < PAIRS; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        unsigned slot = x % WINDOW;
        /* Mostly small blocks, one in eight medium (up to 64 KiB). */
        size_t size = (x >> 8) % 8 ? 16 + (x >> 12) % 1024 : 1024 + (x >> 12) % (63 * 1024);
        free(live[slot]);
        live[slot] = malloc(size);
        if (!live[slot])
            return 1;
        live[slot][0] = (unsigned char)i;
        sum += live[slot][0];
    }
    for (unsigned i = 0; i < WINDOW; i++)
        free(live[i]);
    printf("%lu\n", sum);
    return 0;
}
