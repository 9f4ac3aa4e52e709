/* Fragmentation: does memory freed in one size range serve the next?
 * Peak RSS is the measure here more than time.  Each of ROUNDS rounds:
 *
 *   1. allocate SMALL MiB of small blocks (16..256 B), in groups of 512;
 *   2. free three groups in four whole, and half of the blocks of the rest
 *      at random, so that one small block in eight survives, scattered;
 *   3. allocate SMALL*3/4 MiB of medium blocks (1..32 KiB), writing every
 *      page of them, then free half of them at random;
 *   4. allocate SMALL/2 MiB of large blocks (64..512 KiB), writing every
 *      page of them;
 *   5. free everything.
 *
 * An allocator that reuses freed pages for other sizes keeps the peak near
 * SMALL MiB; one that cannot stays near twice that.
 *
 *   frag ROUNDS [SMALL=256]
 *
 * Prints "frag rounds=R sum=... bad=0". */
#include "bench.h"

#define GROUP 512

static uint64_t sum;
static unsigned long bad;

struct vec {
    void **p;
    size_t n, cap;
};

static void push(struct vec *v, void *p)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 4096;
        v->p = realloc(v->p, v->cap * sizeof *v->p);
        if (!v->p)
            bench_die("out of memory");
    }
    v->p[v->n++] = p;
}

static void *make(size_t size, uint64_t tag, int touch_pages)
{
    unsigned char *p = bench_xmalloc(size);
    if (touch_pages)
        for (size_t i = 16; i + 1 < size; i += 4096)
            p[i] = (unsigned char)tag;
    bench_stamp(p, size, tag);
    return p;
}

static void drop(void **pp)
{
    if (*pp) {
        sum += bench_check(*pp, &bad);
        free(*pp);
        *pp = NULL;
    }
}

static void round_once(bench_rng *r, size_t small_bytes, uint64_t *tag)
{
    struct vec small = {0}, medium = {0}, large = {0};
    size_t total = 0;
    while (total < small_bytes) {
        size_t size = bench_between(r, 16, 256);
        push(&small, make(size, (*tag)++, 0));
        total += size;
    }
    for (size_t g = 0; g < small.n; g += GROUP) {
        size_t end = g + GROUP < small.n ? g + GROUP : small.n;
        int whole = bench_below(r, 4) != 0;
        for (size_t i = g; i < end; i++)
            if (whole || bench_below(r, 2))
                drop(&small.p[i]);
    }
    for (total = 0; total < small_bytes / 4 * 3;) {
        size_t size = bench_log_between(r, 1024, 32768);
        push(&medium, make(size, (*tag)++, 1));
        total += size;
    }
    for (size_t i = 0; i < medium.n; i++)
        if (bench_below(r, 2))
            drop(&medium.p[i]);
    for (total = 0; total < small_bytes / 2;) {
        size_t size = bench_log_between(r, 65536, 524288);
        push(&large, make(size, (*tag)++, 1));
        total += size;
    }
    struct vec *all[3] = {&small, &medium, &large};
    for (int v = 0; v < 3; v++) {
        for (size_t i = 0; i < all[v]->n; i++)
            drop(&all[v]->p[i]);
        free(all[v]->p);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s ROUNDS [SMALL_MIB]\n", argv[0]);
        return 2;
    }
    long long rounds = bench_arg(argc, argv, 1, 3);
    size_t small_mib = (size_t)bench_arg(argc, argv, 2, 256);
    if (small_mib < 1 || small_mib > 65536)
        bench_die("SMALL_MIB must be 1..65536");
    bench_rng r = bench_rng_seed(7);
    uint64_t tag = 1;
    for (long long i = 0; i < rounds; i++)
        round_once(&r, small_mib << 20, &tag);
    printf("frag rounds=%lld small=%zu sum=%llu bad=%lu\n", rounds, small_mib,
           (unsigned long long)sum, bad);
    return bad != 0;
}
