/* The introspection and tuning functions: mallopt, malloc_trim, mallinfo
 * and mallinfo2, malloc_stats and malloc_info (see api.h for the two
 * builds). */
#include "api.h"

/* ------------------------------------------------------------------ */
/* mallopt, malloc_trim, mallinfo, malloc_stats, malloc_info           */

START_TEST(test_mallopt_supported)
{
    void *p;
    ck_assert_int_eq(mallopt(M_MMAP_THRESHOLD, 256 * 1024), 1);
    ck_assert_int_eq(mallopt(M_ARENA_MAX, 4), 1);
    ck_assert_int_eq(mallopt(M_TRIM_THRESHOLD, 512 * 1024), 1);
    p = malloc(tu_opaque(300000));
    check_block(p, 300000);
    free(p);
}
END_TEST

START_TEST(test_mallopt_unsupported)
{
#if CMT_CMALLOC
    /* glibc differs: it returns 1 for any parameter number it does not know. */
    ck_assert_int_eq(mallopt(12345, 1), 0);
    ck_assert_int_eq(mallopt(-12345, 1), 0);
    ck_assert_int_eq(mallopt(999, 0), 0);
#else
    ck_assert_int_eq(mallopt(12345, 1), 1);
#endif
}
END_TEST

/* The other parameters of glibc 2.36's mallopt, with its range checks and
 * return values. */
START_TEST(test_mallopt_glibc_params)
{
    /* glibc's largest fast-bin size: 80 * sizeof(size_t) / 4, 160 on 64-bit. */
    const int mxfast_max = (int)(80 * sizeof(size_t) / 4);
    ck_assert_int_eq(mallopt(M_MXFAST, 0), 1);
    ck_assert_int_eq(mallopt(M_MXFAST, mxfast_max), 1);
    ck_assert_int_eq(mallopt(M_MXFAST, mxfast_max + 1), 0);
    ck_assert_int_eq(mallopt(M_MXFAST, -1), 0);
    ck_assert_int_eq(mallopt(M_MXFAST, 64), 1);
    ck_assert_int_eq(mallopt(M_TOP_PAD, 0), 1);
    ck_assert_int_eq(mallopt(M_TOP_PAD, 1 << 20), 1);
    ck_assert_int_eq(mallopt(M_TOP_PAD, -1), 1);
    ck_assert_int_eq(mallopt(M_CHECK_ACTION, 0), 1);
    ck_assert_int_eq(mallopt(M_CHECK_ACTION, 3), 1);
    ck_assert_int_eq(mallopt(M_MMAP_MAX, -1), 1);
    ck_assert_int_eq(mallopt(M_MMAP_MAX, 65536), 1);
    ck_assert_int_eq(mallopt(M_PERTURB, 0), 1);
}
END_TEST

/* M_MMAP_MAX = 0: blocks above the mmap threshold that the heap can hold
 * get no mapping of their own (mallinfo2's hblks stays put). */
START_TEST(test_mallopt_mmap_max_zero)
{
    size_t before;
    void *p, *q;
    ck_assert_int_eq(mallopt(M_MMAP_THRESHOLD, 128 * 1024), 1);
    ck_assert_int_eq(mallopt(M_MMAP_MAX, 0), 1);
    before = mallinfo2().hblks;
    p = malloc(tu_opaque(300000));
    q = memalign(tu_opaque(256 * 1024), tu_opaque(1));
    check_block(p, 300000);
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq((uintptr_t)q % (256 * 1024), 0);
    ck_assert_uint_eq(mallinfo2().hblks, before);
    free(q);
    free(p);
    ck_assert_int_eq(mallopt(M_MMAP_MAX, 65536), 1);
    p = malloc(tu_opaque(300000));
    check_block(p, 300000);
#if CMT_CMALLOC
    /* glibc differs: it serves this one from the heap top just freed. */
    ck_assert_uint_eq(mallinfo2().hblks, before + 1);
#endif
    free(p);
}
END_TEST

#if !CMT_CMALLOC || !defined(CMT_MINIMAL)
/* M_PERTURB: a block handed out (not by calloc) holds the byte's
 * complement; with glibc, only blocks its tcache does not serve, hence
 * sizes above 1 KiB. */
START_TEST(test_mallopt_perturb)
{
    enum { N = 5000 };
    unsigned char *p, *z;
    size_t i;
    ck_assert_int_eq(mallopt(M_PERTURB, 0x5a), 1);
    p = malloc(tu_opaque(N));
    z = calloc(1, tu_opaque(N));
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(z);
    for (i = 0; i < N; i++) {
        ck_assert_msg(p[i] == 0xa5, "byte %zu of a new block is %#x, want 0xa5", i, p[i]);
        ck_assert_msg(z[i] == 0, "calloc's byte %zu is %#x", i, z[i]);
    }
    free(z);
#if CMT_CMALLOC
    /* glibc differs: its tcache keeps blocks it caches as they are. Past
     * the free key and link, a freed block holds the byte itself (the
     * guards' own pattern instead, and memcheck forbids the read). */
    if (!strstr(getenv("CMALLOC_OPTIONS") ? getenv("CMALLOC_OPTIONS") : "", "hardened=on") &&
        !TU_UNDER_VALGRIND()) {
        size_t usable = malloc_usable_size(p);
        free(p);
        for (i = 16; i < usable; i++)
            ck_assert_msg(p[i] == 0x5a, "byte %zu of a freed block is %#x, want 0x5a", i, p[i]);
    } else {
        free(p);
    }
#else
    free(p);
#endif
    ck_assert_int_eq(mallopt(M_PERTURB, 0), 1);
    p = malloc(tu_opaque(N));
    ck_assert_ptr_nonnull(p);
    memset(p, 7, N);
    free(p);
}
END_TEST
#endif

START_TEST(test_malloc_trim)
{
    enum { N = 2000 };
    void *v[N];
    int i, rc;
    for (i = 0; i < N; i++) {
        v[i] = malloc(tu_opaque((size_t)(i % 50) * 100 + 1));
        ck_assert_ptr_nonnull(v[i]);
    }
    for (i = 0; i < N; i++)
        free(v[i]);
    rc = malloc_trim(0);
    ck_assert_msg(rc == 0 || rc == 1, "malloc_trim(0) returned %d", rc);
    rc = malloc_trim(1 * MiB);
    ck_assert_msg(rc == 0 || rc == 1, "malloc_trim(1 MiB) returned %d", rc);
    /* still usable */
    for (i = 0; i < 100; i++) {
        v[i] = malloc(tu_opaque((size_t)i * 300));
        check_block(v[i], (size_t)i * 300);
    }
    for (i = 0; i < 100; i++)
        free(v[i]);
}
END_TEST

START_TEST(test_mallinfo2_accounting)
{
    enum { N = 100 };
    void *v[N];
    size_t base, mid, after;
    int i;
    base = heap_in_use();
    for (i = 0; i < N; i++) {
        v[i] = malloc(tu_opaque(1000));
        ck_assert_ptr_nonnull(v[i]);
        memset(v[i], i, 1000);
    }
    mid = heap_in_use();
    ck_assert_msg(mid >= base + N * 1000, "in use grew by %zd, want >= %d",
                  (ssize_t)(mid - base), N * 1000);
    for (i = 0; i < N; i++)
        free(v[i]);
    after = heap_in_use();
    ck_assert_msg(after + 90000 <= mid, "in use only shrank by %zd after freeing 100000 B",
                  (ssize_t)(mid - after));

    /* a large (mmap range) block is accounted too */
    {
        void *big = malloc(tu_opaque(8 * MiB));
        size_t with;
        ck_assert_ptr_nonnull(big);
        with = heap_in_use();
        ck_assert_msg(with >= after + 8 * MiB, "8 MiB block not counted (%zu -> %zu)", after,
                      with);
        free(big);
        ck_assert_msg(heap_in_use() + 8 * MiB <= with, "8 MiB block still counted after free");
    }
    {
        struct mallinfo2 mi = mallinfo2();
        /* the bytes in use cannot exceed what was obtained from the system */
        ck_assert_uint_le(mi.uordblks, mi.arena + mi.hblkhd);
    }
}
END_TEST

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
START_TEST(test_mallinfo_matches_mallinfo2)
{
    void *keep = malloc(tu_opaque(5000));
    struct mallinfo2 b;
    struct mallinfo a;
    ck_assert_ptr_nonnull(keep);
    b = mallinfo2();
    a = mallinfo();
    ck_assert_int_eq(a.arena, (int)b.arena);
    ck_assert_int_eq(a.uordblks, (int)b.uordblks);
    ck_assert_int_eq(a.fordblks, (int)b.fordblks);
    ck_assert_int_eq(a.hblkhd, (int)b.hblkhd);
    ck_assert_int_eq(a.hblks, (int)b.hblks);
    ck_assert_int_ge(a.uordblks, 5000);
    free(keep);
}
END_TEST
#pragma GCC diagnostic pop

/* Runs fn with fd 2 redirected into a memfd; returns what was written. */
static size_t capture_fd2(void (*fn)(void), char *buf, size_t cap)
{
    int fd, saved;
    size_t total = 0;
    ssize_t got;
    fflush(stderr);
    fd = memfd_create("cmalloc-test-stderr", MFD_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    saved = dup(2);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(dup2(fd, 2), 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    while (total < cap - 1 && (got = read(fd, buf + total, cap - 1 - total)) > 0)
        total += (size_t)got;
    buf[total] = 0;
    close(fd);
    return total;
}

/* Offset of the first line matching the extended regex, or -1. */
static long line_matching(const char *text, const char *re)
{
    regex_t rx;
    regmatch_t m;
    long at = -1;
    ck_assert_int_eq(regcomp(&rx, re, REG_EXTENDED | REG_NEWLINE), 0);
    if (regexec(&rx, text, 1, &m, 0) == 0)
        at = (long)m.rm_so;
    regfree(&rx);
    return at;
}

static void call_malloc_stats(void)
{
    malloc_stats();
}

START_TEST(test_malloc_stats_layout)
{
    static char out[1 << 16];
    void *small = malloc(tu_opaque(100000));
    void *big = malloc(tu_opaque(4 * MiB));
    long arena, total, mmap_regions, mmap_bytes;
    size_t sys_bytes = 0, inuse_bytes = 0;
    const char *t;
    ck_assert_ptr_nonnull(small);
    ck_assert_ptr_nonnull(big);
    memset(small, 1, 100000);
    memset(big, 1, 4 * MiB);
    ck_assert_uint_gt(capture_fd2(call_malloc_stats, out, sizeof out), 0);

    arena = line_matching(out, "^Arena 0:$");
    total = line_matching(out, "^Total \\(incl\\. mmap\\):$");
    mmap_regions = line_matching(out, "^max mmap regions = +[0-9]+$");
    mmap_bytes = line_matching(out, "^max mmap bytes   = +[0-9]+$");
    ck_assert_msg(arena == 0, "malloc_stats does not start with 'Arena 0:':\n%s", out);
    ck_assert_msg(line_matching(out, "^system bytes     = +[0-9]+$") > arena, "%s", out);
    ck_assert_msg(line_matching(out, "^in use bytes     = +[0-9]+$") > arena, "%s", out);
    ck_assert_msg(total > arena, "no Total section:\n%s", out);
    ck_assert_msg(mmap_regions > total, "no max mmap regions line:\n%s", out);
    ck_assert_msg(mmap_bytes > mmap_regions, "no max mmap bytes line:\n%s", out);

    t = out + total;
    ck_assert_msg(sscanf(t, "Total (incl. mmap):\nsystem bytes = %zu\nin use bytes = %zu",
                         &sys_bytes, &inuse_bytes) == 2,
                  "cannot parse Total section:\n%s", t);
    ck_assert_msg(inuse_bytes >= 4 * MiB + 100000, "Total in use %zu < live bytes", inuse_bytes);
    ck_assert_msg(sys_bytes >= inuse_bytes, "Total system %zu < in use %zu", sys_bytes,
                  inuse_bytes);
#if CMT_CMALLOC
    {
        char re[128];
        long own;
        snprintf(re, sizeof re, "^cmalloc %s: ", cmalloc_version());
        own = line_matching(out, re);
        ck_assert_msg(own > mmap_bytes, "no 'cmalloc %s: ' line after glibc's part:\n%s",
                      cmalloc_version(), out);
        ck_assert_msg(line_matching(out, "^cmalloc [0-9]+\\.[0-9]+\\.[0-9]+: [0-9]+ arenas?, "
                                         "[0-9]+ threads?") == own,
                      "cmalloc line malformed:\n%s", out);
        ck_assert_msg(line_matching(out, "^ *bin +block size +in use +free +runs +taken "
                                         "+returned *$") > own,
                      "no bin table header:\n%s", out);
    }
#endif
    free(big);
    free(small);
}
END_TEST

/* A thread with a cancellation request pending prints the statistics:
 * write() is a cancellation point, but glibc (and cmalloc) turn
 * cancellation off while they print, so the whole report comes out and
 * the request is acted on afterwards. */
static int cancel_stats_ran;

static void *stats_with_cancel_pending(void *arg)
{
    FILE *fp = arg;
    pthread_cancel(pthread_self());
    if (fp)
        malloc_info(0, fp);
    else
        malloc_stats();
    cancel_stats_ran = 1;
    pthread_testcancel();
    return NULL;
}

static void run_cancelled_stats(void)
{
    pthread_t t;
    void *result = NULL;
    cancel_stats_ran = 0;
    ck_assert_int_eq(pthread_create(&t, NULL, stats_with_cancel_pending, NULL), 0);
    ck_assert_int_eq(pthread_join(t, &result), 0);
    ck_assert_ptr_eq(result, PTHREAD_CANCELED);
}

START_TEST(test_malloc_stats_cancel_pending)
{
    static char out[1 << 16];
    void *keep = malloc(tu_opaque(100));
    ck_assert_ptr_nonnull(keep);
    ck_assert_uint_gt(capture_fd2(run_cancelled_stats, out, sizeof out), 0);
    ck_assert_msg(cancel_stats_ran, "the thread was cancelled inside malloc_stats:\n%s", out);
    ck_assert_msg(line_matching(out, "^Arena 0:$") == 0, "no report:\n%s", out);
    ck_assert_msg(line_matching(out, "^max mmap bytes   = +[0-9]+$") > 0, "report cut short:\n%s",
                  out);
    free(keep);
}
END_TEST

static char info_buf[1 << 18];
static char info_stdio_buf[BUFSIZ];

static FILE *memfd_stream(int *fd_out)
{
    int fd = memfd_create("cmalloc-test-info", MFD_CLOEXEC);
    FILE *fp;
    ck_assert_int_ge(fd, 0);
    fp = fdopen(fd, "w+");
    ck_assert_ptr_nonnull(fp);
    /* a caller-supplied buffer: stdio must not allocate inside malloc_info */
    setvbuf(fp, info_stdio_buf, _IOFBF, sizeof info_stdio_buf);
    *fd_out = fd;
    return fp;
}

START_TEST(test_malloc_info_xml)
{
    int fd;
    FILE *fp = memfd_stream(&fd);
    void *keep = malloc(tu_opaque(3000));
    size_t n;
    char *end;
    ck_assert_ptr_nonnull(keep);
    ck_assert_int_eq(malloc_info(0, fp), 0);
    fflush(fp);
    rewind(fp);
    n = fread(info_buf, 1, sizeof info_buf - 1, fp);
    info_buf[n] = 0;
    fclose(fp);
    ck_assert_msg(strncmp(info_buf, "<malloc version=\"1\">", 20) == 0,
                  "malloc_info output starts with: %.60s", info_buf);
    end = info_buf + n;
    while (end > info_buf && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        *--end = 0;
    ck_assert_msg(end - info_buf >= 9 && strcmp(end - 9, "</malloc>") == 0,
                  "malloc_info output does not end with </malloc>: %s",
                  end - info_buf > 60 ? end - 60 : info_buf);
    free(keep);
}
END_TEST

START_TEST(test_malloc_info_bad_options)
{
    int fd;
    FILE *fp = memfd_stream(&fd);
    int rc;
    errno = 0;
    rc = malloc_info(1, fp);
    /* glibc differs from its manual page: it returns EINVAL itself and
     * leaves errno alone; cmalloc does the same. */
    ck_assert_int_eq(rc, EINVAL);
    ck_assert_int_eq(errno, 0);
    fclose(fp);
}
END_TEST

#if CMT_CMALLOC
/* malloc_info into an unbuffered stream, whose every write is a
 * cancellation point, with a request pending. */
START_TEST(test_malloc_info_cancel_pending)
{
    int fd = memfd_create("cmalloc-test-info", MFD_CLOEXEC);
    FILE *fp;
    pthread_t t;
    void *result = NULL;
    ssize_t n;
    ck_assert_int_ge(fd, 0);
    fp = fdopen(fd, "w+");
    ck_assert_ptr_nonnull(fp);
    setvbuf(fp, NULL, _IONBF, 0);
    cancel_stats_ran = 0;
    ck_assert_int_eq(pthread_create(&t, NULL, stats_with_cancel_pending, fp), 0);
    ck_assert_int_eq(pthread_join(t, &result), 0);
    ck_assert_ptr_eq(result, PTHREAD_CANCELED);
    n = pread(fd, info_buf, sizeof info_buf - 1, 0);
    ck_assert_int_gt(n, 0);
    info_buf[n] = 0;
    fclose(fp);
    ck_assert_msg(cancel_stats_ran, "the thread was cancelled inside malloc_info:\n%s", info_buf);
    ck_assert_msg(strstr(info_buf, "</malloc>") != NULL, "malloc_info cut short:\n%s", info_buf);
}
END_TEST
#endif

/* ------------------------------------------------------------------ */

void api_introspection_tests(Suite *s)
{
    TCase *tc;

    tc = api_tcase(s, "introspection");
    tcase_add_test(tc, test_mallopt_supported);
    tcase_add_test(tc, test_mallopt_unsupported);
    tcase_add_test(tc, test_mallopt_glibc_params);
    tcase_add_test(tc, test_mallopt_mmap_max_zero);
#if !CMT_CMALLOC || !defined(CMT_MINIMAL)
    tcase_add_test(tc, test_mallopt_perturb);
#endif
    tcase_add_test(tc, test_malloc_trim);
    tcase_add_test(tc, test_mallinfo2_accounting);
    tcase_add_test(tc, test_mallinfo_matches_mallinfo2);
    tcase_add_test(tc, test_malloc_stats_layout);
    tcase_add_test(tc, test_malloc_stats_cancel_pending);
    tcase_add_test(tc, test_malloc_info_xml);
    tcase_add_test(tc, test_malloc_info_bad_options);
#if CMT_CMALLOC
    /* glibc differs: its malloc_info leaves cancellation on (the thread is
     * cancelled at its first write). */
    tcase_add_test(tc, test_malloc_info_cancel_pending);
#endif
}
