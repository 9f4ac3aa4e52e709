/* Writes into a block after freeing it: memcheck must report an invalid
 * write 5 bytes inside a freed block of size 32. */
#include <stdlib.h>

int main(void)
{
    char *volatile p = malloc(32);
    p[5] = 'a';
    free(p);
    p[5] = 'b';
    return 0;
}
