/* Leaks three blocks of 100 bytes, allocated in leaky_function: memcheck
 * must report 300 bytes in 3 blocks as definitely lost, with a stack that
 * names leaky_function. */
#include <stdlib.h>
#include <string.h>

static void *volatile last;

__attribute__((noinline)) static void leaky_function(void)
{
    for (int i = 0; i < 3; i++) {
        char *p = malloc(100);
        memset(p, i, 100);
        last = p;
    }
    last = NULL;
}

int main(void)
{
    leaky_function();
    return 0;
}
