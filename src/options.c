/* Options: read once at initialisation from CMALLOC_OPTIONS (comma-separated
 * key=value pairs) and from CMALLOC_<KEY> variables, which win; mallopt()
 * changes the ones glibc has a counterpart for. Parsing works on the
 * environment strings in place and never allocates. A bad key or value gets
 * one warning line and leaves the default in force. */
#include <malloc.h>
#include <signal.h>
#include <string.h>

#include "internal.h"

#define CM_DEFAULT_MMAP_THRESHOLD (CM_MAX_CLASS_SIZE + 1)
#define CM_DEFAULT_TRIM_THRESHOLD ((size_t)32 << 20)
#define CM_DEFAULT_TCACHE_MAX_SIZE ((size_t)32 << 10)

/* 1 in a build configured with -DCMALLOC_HARDENED=ON. */
#ifndef CM_HARDENED_DEFAULT
#define CM_HARDENED_DEFAULT 0
#endif

struct cm_options cm_opt = {
    .mmap_threshold = CM_DEFAULT_MMAP_THRESHOLD,
    .trim_threshold = CM_DEFAULT_TRIM_THRESHOLD,
    .tcache_max_size = CM_DEFAULT_TCACHE_MAX_SIZE,
    .purge_delay_ms = 1000,
    .mmap_max = 65536,
    .hardened = CM_HARDENED_DEFAULT,
};

enum value_kind { VALUE_SIZE, VALUE_COUNT, VALUE_BOOL, VALUE_TCACHE, VALUE_STATS, VALUE_SIGNAL };

struct option_spec {
    const char *key;
    const char *env;       /* CMALLOC_<KEY> */
    enum value_kind kind;
    void *target;
    const char *expected;  /* for the warning */
};

static const struct option_spec specs[] = {
    {"arenas", "CMALLOC_ARENAS", VALUE_COUNT, &cm_opt.arena_max, "a number from 1 to 224"},
    {"mmap_threshold", "CMALLOC_MMAP_THRESHOLD", VALUE_SIZE, &cm_opt.mmap_threshold,
     "a size such as 256k"},
    {"trim_threshold", "CMALLOC_TRIM_THRESHOLD", VALUE_SIZE, &cm_opt.trim_threshold,
     "a size such as 32m"},
    {"purge_delay_ms", "CMALLOC_PURGE_DELAY_MS", VALUE_SIZE, &cm_opt.purge_delay_ms,
     "milliseconds, 0 to return memory at once"},
    {"background_purge", "CMALLOC_BACKGROUND_PURGE", VALUE_BOOL, &cm_opt.background_purge,
     "on or off"},
    {"tcache", "CMALLOC_TCACHE", VALUE_TCACHE, &cm_opt.tcache_max_size,
     "on, off or the largest cached size (up to 1m)"},
    {"stats_at_exit", "CMALLOC_STATS_AT_EXIT", VALUE_STATS, &cm_opt.stats_at_exit,
     "off, text or json"},
    {"stats_signal", "CMALLOC_STATS_SIGNAL", VALUE_SIGNAL, &cm_opt.stats_signal,
     "off, USR1, USR2, HUP, WINCH, URG, PROF or a real-time signal number"},
    {"verbose", "CMALLOC_VERBOSE", VALUE_BOOL, &cm_opt.verbose, "on or off"},
    {"hardened", "CMALLOC_HARDENED", VALUE_BOOL, &cm_opt.hardened, "on or off"},
};

/* A value is the text up to the next ',' or the end of the string. */
static size_t value_length(const char *v)
{
    size_t n = 0;
    while (v[n] && v[n] != ',')
        n++;
    return n;
}

static bool value_is(const char *v, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(v, word, len) == 0;
}

static bool parse_bool(const char *v, size_t len, int *out)
{
    if (value_is(v, len, "on") || value_is(v, len, "true") || value_is(v, len, "yes") ||
        value_is(v, len, "1")) {
        *out = 1;
        return true;
    }
    if (value_is(v, len, "off") || value_is(v, len, "false") || value_is(v, len, "no") ||
        value_is(v, len, "0")) {
        *out = 0;
        return true;
    }
    return false;
}

/* Decimal digits with an optional k, m or g suffix (binary multiples). */
static bool parse_size(const char *v, size_t len, size_t *out)
{
    size_t value = 0, i = 0;
    if (len == 0)
        return false;
    for (; i < len && v[i] >= '0' && v[i] <= '9'; i++) {
        if (value > (SIZE_MAX - 9) / 10)
            return false;
        value = value * 10 + (size_t)(v[i] - '0');
    }
    if (i == 0)
        return false;
    unsigned shift = 0;
    if (i < len) {
        switch (v[i] | 0x20) {
        case 'k': shift = 10; break;
        case 'm': shift = 20; break;
        case 'g': shift = 30; break;
        default: return false;
        }
        if (++i != len)
            return false;
    }
    if (shift && value > (SIZE_MAX >> shift))
        return false;
    *out = value << shift;
    return true;
}

/* The signals a report may hang on: USR1, USR2, HUP, WINCH, URG and PROF
 * (by name, with or without SIG, or by number) and the real-time signals.
 * Others are refused: a handler for SEGV or FPE that returns is run again
 * at once, and INT, TERM and the like have meanings a program relies on. */
static bool parse_signal(const char *v, size_t len, int *out)
{
    static const struct {
        const char *name;
        int sig;
    } names[] = {{"usr1", SIGUSR1}, {"usr2", SIGUSR2}, {"hup", SIGHUP},
                 {"winch", SIGWINCH}, {"urg", SIGURG}, {"prof", SIGPROF}};
    int flag;
    if (parse_bool(v, len, &flag) && !flag) {
        *out = 0;
        return true;
    }
    if (len > 3 && strncasecmp(v, "sig", 3) == 0) {
        v += 3;
        len -= 3;
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (value_is(v, len, names[i].name)) {
            *out = names[i].sig;
            return true;
        }
    }
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9' || n > 1000)
            return false;
        n = n * 10 + (v[i] - '0');
    }
    bool named = false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        named |= n == names[i].sig;
    if (len == 0 || !(named || (n >= SIGRTMIN && n <= SIGRTMAX)))
        return false;
    *out = n;
    return true;
}

static bool apply(const struct option_spec *spec, const char *v, size_t len)
{
    size_t size;
    int flag;
    switch (spec->kind) {
    case VALUE_SIZE:
        if (!parse_size(v, len, &size))
            return false;
        *(size_t *)spec->target = size;
        return true;
    case VALUE_COUNT:
        if (!parse_size(v, len, &size) || size < 1 || size > CM_MAX_ARENAS)
            return false;
        *(unsigned *)spec->target = (unsigned)size;
        return true;
    case VALUE_BOOL:
        if (!parse_bool(v, len, &flag))
            return false;
        *(int *)spec->target = flag;
        return true;
    case VALUE_TCACHE:
        if (parse_bool(v, len, &flag))
            size = flag ? CM_DEFAULT_TCACHE_MAX_SIZE : 0;
        else if (!parse_size(v, len, &size) || size > CM_MAX_CLASS_SIZE)
            return false;
        *(size_t *)spec->target = size;
        return true;
    case VALUE_STATS:
        if (value_is(v, len, "text") || (parse_bool(v, len, &flag) && flag))
            *(int *)spec->target = CM_STATS_TEXT;
        else if (value_is(v, len, "json"))
            *(int *)spec->target = CM_STATS_JSON;
        else if (parse_bool(v, len, &flag))
            *(int *)spec->target = CM_STATS_NONE;
        else
            return false;
        return true;
    case VALUE_SIGNAL:
        return parse_signal(v, len, (int *)spec->target);
    }
    return false;
}

static void set_option(const char *source, const char *key, size_t key_len, const char *v,
                       size_t len)
{
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        if (strlen(specs[i].key) == key_len && strncmp(specs[i].key, key, key_len) == 0) {
            if (!apply(&specs[i], v, len))
                cm_message("%s: bad value '%.*s' for %s (expected %s); keeping the default",
                           source, (int)len, v, specs[i].key, specs[i].expected);
            return;
        }
    }
    cm_message("%s: unknown option '%.*s' ignored", source, (int)key_len, key);
}

static void read_options_string(const char *s)
{
    while (*s) {
        size_t item = value_length(s);
        size_t key_len = 0;
        while (key_len < item && s[key_len] != '=')
            key_len++;
        if (item > 0) {
            if (key_len == item)
                cm_message("CMALLOC_OPTIONS: '%.*s' is not key=value; ignored", (int)item, s);
            else
                set_option("CMALLOC_OPTIONS", s, key_len, s + key_len + 1, item - key_len - 1);
        }
        s += item;
        if (*s == ',')
            s++;
    }
}

void cm_options_read(void)
{
    const char *all = cm_prim_getenv("CMALLOC_OPTIONS");
    if (all)
        read_options_string(all);
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        const char *v = cm_prim_getenv(specs[i].env);
        if (v)
            set_option(specs[i].env, specs[i].key, strlen(specs[i].key), v, strlen(v));
    }
}

int cm_options_mallopt(int param, int value)
{
    switch (param) {
    case M_MMAP_THRESHOLD:
        /* glibc refuses more than half its 64 MiB heap size; above our
         * largest class the heap cannot serve a block anyway. */
        if (value < 0 || value > (32 << 20))
            return 0;
        cm_opt.mmap_threshold = (size_t)value > CM_DEFAULT_MMAP_THRESHOLD
                                    ? CM_DEFAULT_MMAP_THRESHOLD
                                    : (size_t)value;
        return 1;
    case M_TRIM_THRESHOLD:
        /* As in glibc, the value is taken as unsigned: -1 turns trimming off. */
        cm_opt.trim_threshold = (size_t)(unsigned long)(long)value;
        return 1;
    case M_ARENA_MAX:
        /* glibc ignores values below 1 but still reports success. */
        if (value >= 1)
            cm_opt.arena_max = value > CM_MAX_ARENAS ? CM_MAX_ARENAS : (unsigned)value;
        return 1;
    case M_MMAP_MAX:
        /* Any value, as in glibc: 0 or less, no huge block below the
         * largest class (larger ones have no other home). */
        __atomic_store_n(&cm_opt.mmap_max, value, __ATOMIC_RELAXED);
        return 1;
    case M_PERTURB:
        /* A feature (src/ext); the minimal build accepts it and fills
         * nothing. */
        if (cm_ext.set_perturb)
            cm_ext.set_perturb(value);
        return 1;
    case M_MXFAST:
        /* glibc's fast bins up to 160 bytes; our thread caches do their
         * work, so only glibc's range check remains. */
        return (size_t)(long)value <= 80 * sizeof(size_t) / 4;
    case M_TOP_PAD:
        /* Heap segments come 4 MiB at a time: nothing to pad. */
    case M_CHECK_ACTION:
        /* Errors always print a message and abort. */
        return 1;
    default:
        return 0;
    }
}
