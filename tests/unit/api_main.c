/* Unit tests of the public malloc API of cmalloc (glibc 2.36 semantics):
 * the suite, built from the test cases of every family (api_*.c), and its
 * run.  api.h says what each file tests and how the two programs, unit_api
 * and unit_glibc_reference, are built from these sources. */
#include "api.h"

TCase *api_tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, NULL, tu_validate_heap);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return tc;
}

static Suite *api_suite(void)
{
    Suite *s = suite_create(CMT_CMALLOC ? "cmalloc-api" : "glibc-reference");

    api_malloc_tests(s);        /* malloc, calloc, impossible */
    api_aligned_tests(s);       /* aligned */
    api_realloc_tests(s);       /* realloc */
    api_introspection_tests(s); /* introspection */
    api_aliases_tests(s);       /* aliases */
#if CMT_CMALLOC
    api_cmalloc_tests(s);       /* cmalloc */
    api_remote_free_tests(s);   /* remote-free */
#endif
    return s;
}

#if !CMT_CMALLOC
#include <dlfcn.h>

/* The reference run means something only on glibc's allocator: under a
 * system-wide preload (/etc/ld.so.preload) malloc is another library's. */
static int malloc_is_glibcs(void)
{
    Dl_info info;
    void *f = dlsym(RTLD_DEFAULT, "malloc");
    if (!f || !dladdr(f, &info) || !info.dli_fname)
        return 0;
    if (strstr(info.dli_fname, "/libc.so"))
        return 1;
    fprintf(stderr, "glibc-reference: malloc comes from %s, not glibc: skipped\n", info.dli_fname);
    return 0;
}
#endif

int main(void)
{
#if !CMT_CMALLOC
    if (!malloc_is_glibcs())
        return 77;
#endif
    SRunner *sr = srunner_create(api_suite());
    int failed;
    srunner_run_all(sr, CK_ENV);
    tu_validate_heap();
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
