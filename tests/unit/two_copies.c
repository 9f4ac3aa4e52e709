/* Loads a second copy of libcmalloc (argv[1], another path) with dlopen in
 * a program whose malloc is cmalloc's already, then allocates, forks and
 * exits: the copy must stay dormant (no start-up message, no fork
 * handlers, no report at exit), and what it exports still works when
 * called directly. Run by two_copies.sh. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

int main(int argc, char **argv)
{
    TU_CHECK(argc == 2, "usage: two_copies LIBRARY-COPY");
    tu_expect_cmalloc();
    void *copy = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    TU_CHECK(copy != NULL, "dlopen %s: %s", argv[1], dlerror());
    void *(*copy_malloc)(size_t) = (void *(*)(size_t))dlsym(copy, "malloc");
    void (*copy_free)(void *) = (void (*)(void *))dlsym(copy, "free");
    int (*copy_owns)(const void *) = (int (*)(const void *))dlsym(copy, "cmalloc_owns");
    TU_CHECK(copy_malloc && copy_free && copy_owns, "the copy lacks the malloc family");
    TU_CHECK(copy_malloc != malloc, "dlopen gave back the first copy");

    char *mine = malloc(tu_opaque(100));
    char *its = copy_malloc(tu_opaque(100));
    TU_CHECK(mine && its, "malloc failed");
    memset(mine, 1, 100);
    memset(its, 2, 100);
    TU_CHECK(copy_owns(its) && !copy_owns(mine), "each copy owns its own blocks only");
    copy_free(its);

    pid_t pid = fork();
    TU_CHECK(pid >= 0, "fork");
    if (pid == 0) {
        free(mine);
        char *p = malloc(tu_opaque(1000));
        _exit(p ? 0 : 1);
    }
    int status;
    TU_CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
             "the child failed");
    free(mine);
    printf("two copies: ok\n");
    return 0;
}
