/* Unit tests of cmalloc's statistics: cmalloc_stats_print (text, JSON, bad
 * formats), what the JSON report counts, the stats_at_exit and stats_signal
 * options, and cmalloc-run --stats / --stats-signal.
 *
 * Linked against the shared library. The option tests run stats_probe (and
 * cmalloc-run) in child processes with the options in their environment.
 * Every JSON report is also checked by stats_json_check.py with python3's
 * json module, when python3 was found at configure time.
 *
 * Compile-time paths: STATS_PROBE, STATS_CHECK (the .py), CMALLOC_RUN,
 * PYTHON3 ("" when not found). */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmalloc.h"
#include "testutil.h"
#include "validate_hook.h"

#define NO_VALUE UINT64_MAX
#define NULL_VALUE (UINT64_MAX - 1)

/* ---- capturing output ---- */

static char out_buf[1 << 20];

/* The report cmalloc_stats_print writes to a memfd-backed stream. */
static size_t print_to_buffer(const char *format, int *rc, int *err)
{
    int fd = memfd_create("cmalloc-test-stats", MFD_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    FILE *fp = fdopen(fd, "w+");
    ck_assert_ptr_nonnull(fp);
    errno = 0;
    *rc = cmalloc_stats_print(fp, format);
    *err = errno;
    fflush(fp);
    rewind(fp);
    size_t n = fread(out_buf, 1, sizeof out_buf - 1, fp);
    out_buf[n] = 0;
    fclose(fp);
    return n;
}

static const char *json_report(void)
{
    int rc, err;
    print_to_buffer("json", &rc, &err);
    ck_assert_int_eq(rc, 0);
    return out_buf;
}

struct child {
    int status;
    size_t out_len, err_len;
    char out[1 << 12];
    char err[8 << 20];
};

static void read_all(int fd, char *buf, size_t cap, size_t *len)
{
    ssize_t got;
    *len = 0;
    while (*len < cap - 1 && (got = read(fd, buf + *len, cap - 1 - *len)) > 0)
        *len += (size_t)got;
    buf[*len] = 0;
}

/* Runs argv with the NULL-terminated "NAME=value" list env added to the
 * environment (and CMALLOC_* from this process removed), stdin from
 * /dev/null; stdout and stderr go to temporary files so the child never
 * blocks on a full pipe. */
static void run(struct child *c, const char *const *env, const char *const *argv)
{
    FILE *out = tmpfile(), *err = tmpfile();
    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(err);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        unsetenv("CMALLOC_OPTIONS");
        unsetenv("CMALLOC_STATS_AT_EXIT");
        unsetenv("CMALLOC_STATS_SIGNAL");
        for (const char *const *e = env; *e; e++)
            putenv((char *)*e);
        dup2(fileno(out), 1);
        dup2(fileno(err), 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    ck_assert_int_eq(waitpid(pid, &c->status, 0), pid);
    rewind(out);
    rewind(err);
    read_all(fileno(out), c->out, sizeof c->out, &c->out_len);
    read_all(fileno(err), c->err, sizeof c->err, &c->err_len);
    fclose(out);
    fclose(err);
}

static int exited_ok(const struct child *c)
{
    return WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0;
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ---- reading the JSON ---- */

/* The number after "key": in the part of the report that starts at the
 * anchors, found one after the other; NULL_VALUE for null, NO_VALUE when
 * the key is missing. Reports are written by cmalloc's own formatter, so
 * a text search is reliable; python3 checks the structure separately. */
static uint64_t json_at(const char *json, const char *anchor1, const char *anchor2,
                        const char *key)
{
    const char *p = strstr(json, anchor1);
    if (p && anchor2)
        p = strstr(p, anchor2);
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    if (!p || !(p = strstr(p, pattern)))
        return NO_VALUE;
    p += strlen(pattern);
    if (strncmp(p, "null", 4) == 0)
        return NULL_VALUE;
    return strtoull(p, NULL, 10);
}

static uint64_t total(const char *json, const char *key)
{
    uint64_t v = json_at(json, "\"totals\":{", NULL, key);
    ck_assert_msg(v != NO_VALUE, "no totals.%s in %.200s", key, json);
    return v;
}

static uint64_t os_value(const char *json, const char *key)
{
    uint64_t v = json_at(json, "\"os\":{", NULL, key);
    ck_assert_msg(v != NO_VALUE, "no os.%s", key);
    return v;
}

static uint64_t huge_value(const char *json, const char *key)
{
    uint64_t v = json_at(json, "\"huge\":{", NULL, key);
    ck_assert_msg(v != NO_VALUE, "no huge.%s", key);
    return v;
}

/* A field of one class in the report's per-class totals (after the
 * arenas), 0 when the class is not listed (never used). */
static uint64_t class_value(const char *json, unsigned cls, const char *key)
{
    char anchor[32];
    snprintf(anchor, sizeof anchor, "{\"class\":%u,", cls);
    const char *classes = strstr(json, "]}],\"classes\":[");
    ck_assert_ptr_nonnull(classes);
    const char *end = strstr(classes, "],\"huge\"");
    const char *at = strstr(classes, anchor);
    if (!at || at > end)
        return 0;
    return json_at(at, anchor, NULL, key);
}

/* python3 stats_json_check.py ARGS on text: the exit status, or 0 when
 * there is no python3 (the C checks still ran). */
static int python_check(const char *text, const char *args)
{
    if (!PYTHON3[0])
        return 0;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s' %s", PYTHON3, STATS_CHECK, args);
    FILE *p = popen(cmd, "w");
    ck_assert_ptr_nonnull(p);
    fputs(text, p);
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

#define ck_assert_valid_json(text, args)                                          \
    ck_assert_msg(python_check((text), (args)) == 0,                              \
                  "stats_json_check.py %s rejects the report(s) (see stderr)", (args))

/* ---- cmalloc_stats_print ---- */

START_TEST(test_print_text)
{
    int rc, err;
    void *keep = malloc(tu_opaque(3000));
    ck_assert_ptr_nonnull(keep);
    ck_assert_uint_gt(print_to_buffer("text", &rc, &err), 0);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strncmp(out_buf, "Arena 0:\nsystem bytes     = ", 28) == 0,
                  "text report does not start like malloc_stats:\n%.200s", out_buf);
    ck_assert_ptr_nonnull(strstr(out_buf, "\nTotal (incl. mmap):\n"));
    ck_assert_ptr_nonnull(strstr(out_buf, "\ncmalloc " CMALLOC_VERSION_STRING ": "));
    ck_assert_ptr_nonnull(strstr(out_buf, "\n bin  block size     in use       free"));

    /* NULL format is text too */
    ck_assert_uint_gt(print_to_buffer(NULL, &rc, &err), 0);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strncmp(out_buf, "Arena 0:\n", 9) == 0, "NULL format: %.100s", out_buf);
    free(keep);
}
END_TEST

/* A NULL stream is standard error, written without stdio. */
START_TEST(test_print_null_stream)
{
    int fd = memfd_create("cmalloc-test-stderr", MFD_CLOEXEC);
    int saved = dup(2);
    size_t n;
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(saved, 0);
    fflush(stderr);
    dup2(fd, 2);
    int rc = cmalloc_stats_print(NULL, "json");
    dup2(saved, 2);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    read_all(fd, out_buf, sizeof out_buf, &n);
    close(fd);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strncmp(out_buf, "{\"schema\":\"cmalloc-stats\",", 26) == 0,
                  "stderr got: %.100s", out_buf);
    ck_assert_msg(n > 0 && out_buf[n - 1] == '\n' && !memchr(out_buf, '\n', n - 1),
                  "the JSON report is not one line");
    ck_assert_valid_json(out_buf, "--min 1 --max 1");
}
END_TEST

START_TEST(test_print_bad_format)
{
    static const char *const bad[] = {"xml", "", "JSON", "text ", "jsonx"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc, err;
        size_t n = print_to_buffer(bad[i], &rc, &err);
        ck_assert_msg(rc == -1 && err == EINVAL, "format '%s': rc %d errno %d", bad[i], rc, err);
        ck_assert_msg(n == 0, "format '%s': %zu bytes written", bad[i], n);
    }
}
END_TEST

START_TEST(test_json_valid)
{
    void *big = malloc(tu_opaque(3 * MiB));
    ck_assert_ptr_nonnull(big);
    static const char start[] =
        "{\"schema\":\"cmalloc-stats\",\"schema_version\":1,\"version\":\"" CMALLOC_VERSION_STRING
        "\",\"pid\":";
    const char *json = json_report();
    ck_assert_msg(strncmp(json, start, sizeof start - 1) == 0, "report starts with %.100s", json);
    ck_assert_valid_json(json, "--min 1 --max 1 --strict");
    free(big);
}
END_TEST

/* 1000 blocks of 100 bytes (class 7, 112 bytes) show up in use, in the
 * requested bytes and in the class counts, and go away again when freed. */
START_TEST(test_json_counts_blocks)
{
    enum { N = 1000, SIZE = 100, CLS = 7, CLS_SIZE = 112 };
    static void *v[N];
    char *before = strdup(json_report());
    ck_assert_ptr_nonnull(before);
    for (int i = 0; i < N; i++) {
        v[i] = malloc(tu_opaque(SIZE));
        ck_assert_ptr_nonnull(v[i]);
    }
    char *live = strdup(json_report());
    ck_assert_ptr_nonnull(live);
    for (int i = 0; i < N; i++)
        free(v[i]);
    const char *after = json_report();

    uint64_t use0 = total(before, "bytes_in_use"), use1 = total(live, "bytes_in_use"),
             use2 = total(after, "bytes_in_use");
    ck_assert_msg(use1 >= use0 + N * CLS_SIZE, "in use %llu -> %llu with %d more blocks",
                  (unsigned long long)use0, (unsigned long long)use1, N);
    ck_assert_msg(use2 + N * SIZE * 9 / 10 <= use1, "in use %llu -> %llu after freeing them",
                  (unsigned long long)use1, (unsigned long long)use2);
    if (!TU_UNDER_VALGRIND()) {
        ck_assert_uint_ge(class_value(live, CLS, "blocks_in_use"),
                          class_value(before, CLS, "blocks_in_use") + N);
        /* taken from runs: all but what this thread's cache (at most 128
         * of this class) held before */
        ck_assert_uint_ge(class_value(live, CLS, "nmalloc"),
                          class_value(before, CLS, "nmalloc") + N - 128);
    }
    ck_assert_uint_ge(class_value(after, CLS, "nfree"), class_value(live, CLS, "nfree"));
    ck_assert_uint_eq(class_value(live, CLS, "bytes_in_use"),
                      class_value(live, CLS, "blocks_in_use") * CLS_SIZE);

    uint64_t req0 = total(before, "bytes_requested"), req1 = total(live, "bytes_requested");
    if (req0 != NULL_VALUE) {
        ck_assert_msg(req1 >= req0 + (uint64_t)N * SIZE, "requested %llu -> %llu",
                      (unsigned long long)req0, (unsigned long long)req1);
        ck_assert_uint_ge(total(after, "bytes_requested"), req1);
    } else {
        ck_assert_uint_eq(req1, NULL_VALUE);  /* built with CMALLOC_STATS=OFF */
    }
    ck_assert_uint_ge(total(live, "bytes_held_peak"), total(live, "bytes_held"));
    ck_assert_uint_ge(total(live, "bytes_held"), use1);
    ck_assert_uint_ge(json_at(live, "\"arenas\":[", NULL, "bytes_out_peak"),
                      json_at(live, "\"arenas\":[", NULL, "bytes_out"));
    ck_assert_valid_json(live, "--min 1 --max 1 --strict");
    ck_assert_valid_json(after, "--min 1 --max 1 --strict");
    free(before);
    free(live);
}
END_TEST

/* Emptied runs of a one-block class (4 KiB blocks have a page each) stay
 * with their bin for the next mallocs of the class, up to 32 KiB of them,
 * instead of going back to the buddy system one by one; malloc_trim gives
 * them back. */
START_TEST(test_json_keeps_empty_runs)
{
    /* CACHED: this thread's cache of the class (4 blocks), and the 4 KiB
     * buffer of the stream each report is written to. */
    enum { N = 40, SIZE = 4096, CLS = 28, KEPT = 8, CACHED = 5 };
    static void *v[N];
    if (TU_UNDER_VALGRIND())
        return; /* blocks carry annotation room there: another class */
    for (int i = 0; i < N; i++) {
        v[i] = malloc(tu_opaque(SIZE));
        ck_assert_ptr_nonnull(v[i]);
        memset(v[i], 0x11, SIZE);
    }
    uint64_t live = class_value(json_report(), CLS, "runs");
    ck_assert_msg(live >= N, "%llu runs of the 4 KiB class with %d blocks live",
                  (unsigned long long)live, N);
    for (int i = 0; i < N; i++)
        free(v[i]);
    uint64_t freed = class_value(json_report(), CLS, "runs");
    ck_assert_msg(freed >= KEPT && freed <= KEPT + CACHED,
                  "%llu runs of the 4 KiB class kept after all were freed (want %d to %d)",
                  (unsigned long long)freed, KEPT, KEPT + CACHED);
    malloc_trim(0);
    uint64_t trimmed = class_value(json_report(), CLS, "runs");
    ck_assert_msg(trimmed <= CACHED, "%llu runs of the 4 KiB class after malloc_trim",
                  (unsigned long long)trimmed);
}
END_TEST

/* A huge block is one mmap region; held from the OS grows by its size and
 * keeps its peak; malloc_trim gives it back, which counts as returned. */
START_TEST(test_json_huge_and_os)
{
    ck_assert_int_ge(malloc_trim(0), 0);
    char *before = strdup(json_report());
    ck_assert_ptr_nonnull(before);
    char *big = malloc(tu_opaque(8 * MiB));
    ck_assert_ptr_nonnull(big);
    memset(big, 1, 8 * MiB);
    char *live = strdup(json_report());
    ck_assert_ptr_nonnull(live);
    free(big);
    malloc_trim(0);
    const char *after = json_report();

    ck_assert_uint_eq(huge_value(live, "count"), huge_value(before, "count") + 1);
    ck_assert_uint_ge(huge_value(live, "bytes"), huge_value(before, "bytes") + 8 * MiB);
    ck_assert_uint_ge(huge_value(live, "bytes_peak"), huge_value(live, "bytes"));
    ck_assert_uint_ge(os_value(live, "bytes_held"), os_value(before, "bytes_held") + 8 * MiB);
    ck_assert_uint_ge(os_value(live, "bytes_mapped"), os_value(before, "bytes_mapped") + 8 * MiB);
    ck_assert_uint_eq(huge_value(after, "count"), huge_value(before, "count"));
    ck_assert_uint_eq(huge_value(after, "bytes_cached"), 0);
    ck_assert_uint_ge(os_value(after, "bytes_held_peak"), os_value(live, "bytes_held"));
    ck_assert_uint_le(os_value(after, "bytes_held") + 8 * MiB, os_value(live, "bytes_held"));
    ck_assert_uint_ge(os_value(after, "bytes_unmapped"), os_value(before, "bytes_unmapped") + 8 * MiB);
    ck_assert_uint_ge(total(after, "bytes_returned"), total(before, "bytes_returned") + 8 * MiB);
    ck_assert_valid_json(after, "--min 1 --max 1 --strict");
    free(before);
    free(live);
}
END_TEST

static void *allocate_and_exit(void *arg)
{
    size_t n = *(size_t *)arg;
    for (int i = 0; i < 100; i++)
        free(malloc(tu_opaque(n)));
    return NULL;
}

/* A thread's requested bytes outlive the thread. */
START_TEST(test_json_requested_after_thread_exit)
{
    size_t n = 5000;
    pthread_t t;
    uint64_t before = total(json_report(), "bytes_requested");
    if (before == NULL_VALUE)
        return;  /* built with CMALLOC_STATS=OFF */
    ck_assert_int_eq(pthread_create(&t, NULL, allocate_and_exit, &n), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    uint64_t after = total(json_report(), "bytes_requested");
    ck_assert_msg(after >= before + 100 * n, "requested %llu -> %llu, the thread asked %zu",
                  (unsigned long long)before, (unsigned long long)after, 100 * n);
}
END_TEST

/* Hooks are not in a minimal build. */
#ifndef CMT_MINIMAL
static void ignore_event(const struct cmalloc_event *ev, void *arg)
{
    (void)ev;
    (void)arg;
}

/* Blocks reported to hooks live in an arena of their own, which the
 * reports include after the others. */
START_TEST(test_traced_arena_reported)
{
    static char info[1 << 16];
    ck_assert_int_eq(cmalloc_hook_install(ignore_event, NULL, 0), 0);
    void *p = malloc(tu_opaque(200));
    ck_assert_ptr_nonnull(p);
    const char *json = json_report();
    ck_assert_ptr_nonnull(strstr(json, "\"traced\":true"));
    uint64_t in_use = json_at(json, "\"traced\":true", NULL, "bytes_in_use");
    ck_assert_msg(in_use >= 200 && in_use != NO_VALUE, "traced arena in use: %llu",
                  (unsigned long long)in_use);
    ck_assert_valid_json(json, "--min 1 --max 1 --strict");

    FILE *fp = fmemopen(info, sizeof info, "w");
    ck_assert_ptr_nonnull(fp);
    ck_assert_int_eq(malloc_info(0, fp), 0);
    fclose(fp);
    uint64_t arenas = total(json, "arenas");
    char heap[32];
    snprintf(heap, sizeof heap, "<heap nr=\"%llu\">", (unsigned long long)arenas);
    ck_assert_msg(strstr(info, heap), "malloc_info has no %s for the traced arena", heap);

    free(p);
    ck_assert_int_eq(cmalloc_hook_remove(ignore_event, NULL), 0);
}
END_TEST
#endif

/* ---- options: stats_at_exit, stats_signal ---- */

START_TEST(test_exit_json)
{
    static struct child c;
    const char *env[] = {"CMALLOC_OPTIONS=stats_at_exit=json", NULL};
    const char *argv[] = {STATS_PROBE, "exit", NULL};
    run(&c, env, argv);
    ck_assert_msg(exited_ok(&c), "probe failed: %s", c.err);
    ck_assert_str_eq(c.out, "probe done\n");
    ck_assert_msg(count(c.err, "{\"schema\":\"cmalloc-stats\"") == 1, "stderr: %.300s", c.err);
    ck_assert_msg(total(c.err, "bytes_in_use") >= 1000 * 112, "the 1000 live blocks are missing");
    ck_assert_valid_json(c.err, "--min 1 --max 1 --strict");

    /* CMALLOC_STATS_AT_EXIT wins over CMALLOC_OPTIONS */
    const char *env2[] = {"CMALLOC_OPTIONS=stats_at_exit=json", "CMALLOC_STATS_AT_EXIT=text", NULL};
    run(&c, env2, argv);
    ck_assert(exited_ok(&c));
    ck_assert_msg(strncmp(c.err, "Arena 0:\n", 9) == 0 && !strstr(c.err, "{\"schema\""),
                  "stderr: %.300s", c.err);
}
END_TEST

/* A report written while the thread has a cancellation request pending
 * (its writes are cancellation points) comes out whole: at exit and on the
 * stats signal. */
START_TEST(test_reports_with_cancel_pending)
{
    static struct child c;
    const char *env[] = {"CMALLOC_OPTIONS=stats_at_exit=text", NULL};
    const char *argv[] = {STATS_PROBE, "cancel-exit", NULL};
    run(&c, env, argv);
    ck_assert_msg(exited_ok(&c), "probe failed: status %#x, %s", c.status, c.err);
    ck_assert_str_eq(c.out, "probe done\n");
    ck_assert_msg(count(c.err, "Arena 0:\n") == 1 &&
                      count(c.err, "\ncmalloc " CMALLOC_VERSION_STRING ": ") == 1,
                  "exit report missing or cut short:\n%.2000s", c.err);

    char sig[16];
    snprintf(sig, sizeof sig, "%d", SIGUSR2);
    const char *env2[] = {"CMALLOC_OPTIONS=stats_signal=USR2", NULL};
    const char *argv2[] = {STATS_PROBE, "cancel-signal", sig, NULL};
    run(&c, env2, argv2);
    ck_assert_msg(exited_ok(&c), "probe failed: status %#x, %s", c.status, c.err);
    ck_assert_str_eq(c.out, "probe done\n");
    ck_assert_msg(count(c.err, "Arena 0:\n") == 1 &&
                      count(c.err, "\ncmalloc " CMALLOC_VERSION_STRING ": ") == 1,
                  "signal report missing or cut short:\n%.2000s", c.err);
}
END_TEST

/* A bad value: one warning that names the key, and the default (no report,
 * no handler) stays in force. */
START_TEST(test_bad_values)
{
    static struct child c;
    static const char *const cases[][2] = {
        {"CMALLOC_OPTIONS=stats_at_exit=xml", "stats_at_exit"},
        {"CMALLOC_STATS_AT_EXIT=yaml", "stats_at_exit"},
        {"CMALLOC_OPTIONS=stats_signal=KILL", "stats_signal"},
        {"CMALLOC_OPTIONS=stats_signal=SEGV", "stats_signal"},
        {"CMALLOC_STATS_SIGNAL=9", "stats_signal"},
        {"CMALLOC_STATS_SIGNAL=USR3", "stats_signal"},
        {"CMALLOC_STATS_SIGNAL=", "stats_signal"},
    };
    const char *argv[] = {STATS_PROBE, "exit", NULL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *env[] = {cases[i][0], NULL};
        char key[64];
        snprintf(key, sizeof key, "for %s (expected ", cases[i][1]);
        run(&c, env, argv);
        ck_assert_msg(exited_ok(&c), "%s: probe failed", cases[i][0]);
        ck_assert_msg(count(c.err, "cmalloc: ") == 1 && count(c.err, key) == 1 &&
                          strstr(c.err, "bad value"),
                      "%s: want one warning naming %s, got:\n%s", cases[i][0], cases[i][1], c.err);
        ck_assert_msg(!strstr(c.err, "Arena 0:") && !strstr(c.err, "{\"schema\""),
                      "%s: a report was printed", cases[i][0]);
    }
    /* The bad stats_signal left SIGUSR2 alone: it still kills the probe. */
    char sig[16];
    snprintf(sig, sizeof sig, "%d", SIGUSR2);
    const char *env[] = {"CMALLOC_OPTIONS=stats_signal=USR3", NULL};
    const char *sig_argv[] = {STATS_PROBE, "signal", sig, "1", "0", NULL};
    run(&c, env, sig_argv);
    ck_assert_msg(WIFSIGNALED(c.status) && WTERMSIG(c.status) == SIGUSR2,
                  "status %#x: SIGUSR2 did not kill the probe", c.status);
}
END_TEST

START_TEST(test_good_values)
{
    static struct child c;
    static const char *const on[] = {"stats_at_exit=on", "stats_at_exit=TEXT", "stats_at_exit=1"};
    static const char *const off[] = {"stats_at_exit=off", "stats_at_exit=0",
                                      "stats_signal=off", "stats_signal=0"};
    const char *argv[] = {STATS_PROBE, "exit", NULL};
    char var[64];
    for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
        snprintf(var, sizeof var, "CMALLOC_OPTIONS=%s", on[i]);
        const char *env[] = {var, NULL};
        run(&c, env, argv);
        ck_assert(exited_ok(&c));
        ck_assert_msg(strncmp(c.err, "Arena 0:\n", 9) == 0 && count(c.err, "cmalloc: ") == 0,
                      "%s: stderr:\n%.300s", on[i], c.err);
    }
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        snprintf(var, sizeof var, "CMALLOC_OPTIONS=%s", off[i]);
        const char *env[] = {var, NULL};
        run(&c, env, argv);
        ck_assert(exited_ok(&c));
        ck_assert_msg(c.err_len == 0, "%s: stderr:\n%.300s", off[i], c.err);
    }
}
END_TEST

/* Text reports on SIGUSR2 (by name, with SIG, by number), while two other
 * threads hammer malloc. */
START_TEST(test_signal_text)
{
    static struct child c;
    char sig[16], by_number[48];
    snprintf(sig, sizeof sig, "%d", SIGUSR2);
    snprintf(by_number, sizeof by_number, "CMALLOC_STATS_SIGNAL=%d", SIGUSR2);
    const char *const values[] = {"CMALLOC_OPTIONS=stats_signal=USR2",
                                  "CMALLOC_OPTIONS=stats_signal=sigusr2", by_number};
    const char *argv[] = {STATS_PROBE, "signal", sig, "3", "0", NULL};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        const char *env[] = {values[i], NULL};
        run(&c, env, argv);
        ck_assert_msg(exited_ok(&c), "%s: status %#x, stderr:\n%.500s", values[i], c.status,
                      c.err);
        ck_assert_str_eq(c.out, "probe done\n");
        ck_assert_msg(count(c.err, "Arena 0:\n") == 3 &&
                          count(c.err, "\ncmalloc " CMALLOC_VERSION_STRING ": ") == 3,
                      "%s: want 3 reports, stderr:\n%.2000s", values[i], c.err);
    }
}
END_TEST

/* JSON reports (the format of stats_at_exit) on a real-time signal, three
 * raised by the main thread and up to 100 delivered to a thread that is
 * hammering malloc with no thread cache, so that the signal often finds it
 * holding its arena's lock: the report must neither hang nor come out
 * broken. */
START_TEST(test_signal_json_under_load)
{
    static struct child c;
    char sig[16], var[64];
    snprintf(sig, sizeof sig, "%d", SIGRTMIN + 2);
    snprintf(var, sizeof var, "CMALLOC_OPTIONS=stats_signal=%d,stats_at_exit=json,tcache=off",
             SIGRTMIN + 2);
    const char *env[] = {var, NULL};
    const char *argv[] = {STATS_PROBE, "signal", sig, "3", "100", NULL};
    run(&c, env, argv);
    ck_assert_msg(exited_ok(&c), "status %#x, stderr:\n%.500s", c.status, c.err);
    ck_assert_str_eq(c.out, "probe done\n");
    int reports = count(c.err, "{\"schema\":\"cmalloc-stats\"");
    /* 3 raised, 1 at exit, and at least one of those sent to the thread */
    ck_assert_msg(reports >= 5 && reports <= 104, "%d reports", reports);
    ck_assert_int_eq(count(c.err, "\n"), reports);
    ck_assert_valid_json(c.err, "--min 5 --max 104");
}
END_TEST

/* ---- cmalloc-run ---- */

START_TEST(test_cmalloc_run_stats_json)
{
    static struct child c;
    const char *env[] = {NULL};
    const char *argv_true[] = {CMALLOC_RUN, "--stats=json", "/bin/true", NULL};
    run(&c, env, argv_true);
    ck_assert_msg(exited_ok(&c), "cmalloc-run --stats=json /bin/true: %s", c.err);
    ck_assert_int_eq(count(c.err, "{\"schema\":\"cmalloc-stats\""), 1);
    ck_assert_valid_json(c.err, "--min 1 --max 1");

    if (PYTHON3[0]) {
        const char *argv_py[] = {CMALLOC_RUN, "--stats=json", PYTHON3, "-c",
                                 "import json; print(len(json.dumps([list(range(i)) "
                                 "for i in range(500)])))",
                                 NULL};
        run(&c, env, argv_py);
        ck_assert_msg(exited_ok(&c), "cmalloc-run --stats=json python3: %s", c.err);
        ck_assert_str_eq(c.out, "574857\n");
        ck_assert_msg(total(c.err, "bytes_requested") == NULL_VALUE ||
                          total(c.err, "bytes_requested") > 600000,
                      "python3 asked for little");
        ck_assert_valid_json(c.err, "--min 1 --max 1");
    }

    const char *argv_text[] = {CMALLOC_RUN, "--stats=text", "/bin/true", NULL};
    run(&c, env, argv_text);
    ck_assert(exited_ok(&c));
    ck_assert_msg(strncmp(c.err, "Arena 0:\n", 9) == 0, "--stats=text: %.200s", c.err);

    const char *argv_bad[] = {CMALLOC_RUN, "--stats=xml", "/bin/true", NULL};
    run(&c, env, argv_bad);
    ck_assert_msg(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 2 &&
                      strstr(c.err, "--stats"),
                  "--stats=xml: status %#x, %s", c.status, c.err);
}
END_TEST

START_TEST(test_cmalloc_run_stats_signal)
{
    static struct child c;
    char usr1[16], usr2[16];
    snprintf(usr1, sizeof usr1, "%d", SIGUSR1);
    snprintf(usr2, sizeof usr2, "%d", SIGUSR2);
    const char *env[] = {NULL};
    const char *argv[] = {CMALLOC_RUN, "--stats-signal=USR2", STATS_PROBE, "signal", usr2, "2",
                          "0", NULL};
    run(&c, env, argv);
    ck_assert_msg(exited_ok(&c), "status %#x: %s", c.status, c.err);
    ck_assert_int_eq(count(c.err, "Arena 0:\n"), 2);

    /* with --stats=json the signal reports are JSON too, and one at exit */
    const char *argv_json[] = {CMALLOC_RUN, "--stats=json", "--stats-signal", "SIGUSR1",
                               STATS_PROBE, "signal", usr1, "2", "0", NULL};
    run(&c, env, argv_json);
    ck_assert_msg(exited_ok(&c), "status %#x: %s", c.status, c.err);
    ck_assert_int_eq(count(c.err, "{\"schema\":\"cmalloc-stats\""), 3);
    ck_assert_valid_json(c.err, "--min 3 --max 3");

    const char *argv_bad[] = {CMALLOC_RUN, "--stats-signal=KILL", "/bin/true", NULL};
    run(&c, env, argv_bad);
    ck_assert_msg(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 2 &&
                      strstr(c.err, "--stats-signal"),
                  "--stats-signal=KILL: status %#x, %s", c.status, c.err);
}
END_TEST

static Suite *stats_suite(void)
{
    Suite *s = suite_create("cmalloc-stats");
    TCase *tc = tcase_create("print");
    tcase_add_checked_fixture(tc, NULL, tu_validate_heap);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_print_text);
    tcase_add_test(tc, test_print_null_stream);
    tcase_add_test(tc, test_print_bad_format);
    tcase_add_test(tc, test_json_valid);
    tcase_add_test(tc, test_json_counts_blocks);
    tcase_add_test(tc, test_json_keeps_empty_runs);
    tcase_add_test(tc, test_json_huge_and_os);
    tcase_add_test(tc, test_json_requested_after_thread_exit);
#ifndef CMT_MINIMAL
    tcase_add_test(tc, test_traced_arena_reported);
#endif
    suite_add_tcase(s, tc);

    tc = tcase_create("options");

    tcase_add_checked_fixture(tc, NULL, tu_validate_heap);
    tcase_set_timeout(tc, 200);
    tcase_add_test(tc, test_exit_json);
    tcase_add_test(tc, test_reports_with_cancel_pending);
    tcase_add_test(tc, test_bad_values);
    tcase_add_test(tc, test_good_values);
    tcase_add_test(tc, test_signal_text);
    tcase_add_test(tc, test_signal_json_under_load);
    suite_add_tcase(s, tc);

    tc = tcase_create("cmalloc-run");

    tcase_add_checked_fixture(tc, NULL, tu_validate_heap);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cmalloc_run_stats_json);
    tcase_add_test(tc, test_cmalloc_run_stats_signal);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(stats_suite());
    srunner_run_all(sr, CK_ENV);
    tu_validate_heap();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
