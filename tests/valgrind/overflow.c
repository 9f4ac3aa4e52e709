/* Writes one byte past a 10-byte block: memcheck must report an invalid
 * write 0 bytes after a block of size 10. */
#include <stdlib.h>

int main(void)
{
    char *volatile p = malloc(10);
    p[10] = 'x';
    free(p);
    return 0;
}
