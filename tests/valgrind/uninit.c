/* Branches on a byte of a fresh block that was never written: memcheck
 * must report a conditional jump on an uninitialised value. */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    char *volatile p = malloc(16);
    if (p[3] == 42)
        puts("forty-two");
    free(p);
    return 0;
}
