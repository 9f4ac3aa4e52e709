/* A small but not trivial C program that the gcc program test compiles
 * (under cmalloc) and then runs (under cmalloc).  Deterministic output. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    char *key;
    unsigned count;
    struct entry *next;
};

struct table {
    struct entry **bucket;
    size_t nbuckets, size;
};

static uint32_t seed = 2463534242u;

static uint32_t next_random(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 17;
    seed ^= seed << 5;
    return seed;
}

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

static void grow(struct table *t)
{
    size_t n = t->nbuckets ? t->nbuckets * 2 : 64, i;
    struct entry **b = calloc(n, sizeof *b);
    if (!b)
        exit(2);
    for (i = 0; i < t->nbuckets; i++) {
        struct entry *e = t->bucket[i], *next;
        for (; e; e = next) {
            next = e->next;
            e->next = b[hash(e->key) % n];
            b[hash(e->key) % n] = e;
        }
    }
    free(t->bucket);
    t->bucket = b;
    t->nbuckets = n;
}

static void add(struct table *t, const char *key)
{
    struct entry *e;
    if (t->size >= t->nbuckets)
        grow(t);
    for (e = t->bucket[hash(key) % t->nbuckets]; e; e = e->next)
        if (strcmp(e->key, key) == 0) {
            e->count++;
            return;
        }
    e = malloc(sizeof *e);
    if (!e || !(e->key = strdup(key)))
        exit(2);
    e->count = 1;
    e->next = t->bucket[hash(key) % t->nbuckets];
    t->bucket[hash(key) % t->nbuckets] = e;
    t->size++;
}

static int by_count(const void *a, const void *b)
{
    const struct entry *x = *(const struct entry *const *)a, *y = *(const struct entry *const *)b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->key, y->key);
}

static unsigned long fib(unsigned n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

int main(void)
{
    struct table t = {0};
    struct entry **all;
    size_t i, k = 0;
    char word[16];
    char *text = NULL;
    size_t len = 0;

    for (i = 0; i < 200000; i++) {
        int n = 1 + (int)(next_random() % 4), j;
        for (j = 0; j < n; j++)
            word[j] = (char)('a' + next_random() % 6);
        word[n] = 0;
        add(&t, word);
        if (i % 1000 == 0) {
            char *grown = realloc(text, len + n + 2);
            if (!grown)
                exit(2);
            text = grown;
            memcpy(text + len, word, (size_t)n);
            len += (size_t)n;
            text[len++] = ' ';
            text[len] = 0;
        }
    }
    all = malloc(t.size * sizeof *all);
    if (!all)
        exit(2);
    for (i = 0; i < t.nbuckets; i++) {
        struct entry *e;
        for (e = t.bucket[i]; e; e = e->next)
            all[k++] = e;
    }
    qsort(all, k, sizeof *all, by_count);
    printf("distinct words: %zu\n", k);
    for (i = 0; i < 8; i++)
        printf("%-5s %u\n", all[i]->key, all[i]->count);
    printf("text: %zu bytes, hash %08x\n", len, (unsigned)hash(text));
    printf("fib(27) = %lu\n", fib(27));
    for (i = 0; i < k; i++) {
        free(all[i]->key);
        free(all[i]);
    }
    free(all);
    free(t.bucket);
    free(text);
    return 0;
}
