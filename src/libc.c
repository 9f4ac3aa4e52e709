/* The libc seam: everything cmalloc needs from the C library on paths that
 * malloc itself may run, written so that none of it can allocate. stdio,
 * getenv, sysconf and friends are not safe there (they may call malloc, or
 * run before libc is set up), so we bring a tiny formatter and read the
 * environment and /proc ourselves. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

extern char **environ;

struct cm_out {
    char *buf;
    size_t cap;
    size_t len;
};

static void out_char(struct cm_out *o, char c)
{
    if (o->len + 1 < o->cap)
        o->buf[o->len] = c;
    o->len++;
}

static void out_padded(struct cm_out *o, const char *s, size_t n, int width, bool left)
{
    size_t pad = width > 0 && (size_t)width > n ? (size_t)width - n : 0;
    if (!left)
        while (pad--)
            out_char(o, ' ');
    for (size_t i = 0; i < n; i++)
        out_char(o, s[i]);
    if (left)
        while (pad--)
            out_char(o, ' ');
}

static void out_unsigned(struct cm_out *o, unsigned long long v, unsigned base, int width,
                         bool left, bool negative, bool zero_pad)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (negative)
        tmp[sizeof tmp - 1 - n++] = '-';
    if (zero_pad && !left) {
        while (width > 0 && n < (size_t)width && n < sizeof tmp)
            tmp[sizeof tmp - 1 - n++] = '0';
    }
    out_padded(o, tmp + sizeof tmp - n, n, width, left);
}

/* A printf subset: %s %c %d %i %u %x %p %%, the l/ll/z length modifiers,
 * '-' and '0' flags, a decimal width and %.*s. Output is always NUL-terminated;
 * the return value is the length that a large enough buffer would hold. */
size_t cm_vformat(char *buf, size_t cap, const char *fmt, va_list ap)
{
    struct cm_out o = {buf, cap, 0};
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            out_char(&o, *f);
            continue;
        }
        f++;
        bool left = false, zero = false;
        for (;; f++) {
            if (*f == '-')
                left = true;
            else if (*f == '0')
                zero = true;
            else
                break;
        }
        int width = 0;
        while (*f >= '0' && *f <= '9')
            width = width * 10 + (*f++ - '0');
        int precision = -1;
        if (*f == '.' && f[1] == '*') {
            precision = va_arg(ap, int);
            f += 2;
        }
        int longs = 0;
        bool size_t_arg = false;
        for (;; f++) {
            if (*f == 'l')
                longs++;
            else if (*f == 'z')
                size_t_arg = true;
            else
                break;
        }
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            size_t n = precision >= 0 ? strnlen(s, (size_t)precision) : strlen(s);
            out_padded(&o, s, n, width, left);
            break;
        }
        case 'c': {
            char c = (char)va_arg(ap, int);
            out_padded(&o, &c, 1, width, left);
            break;
        }
        case 'd':
        case 'i': {
            long long v = size_t_arg ? (long long)va_arg(ap, ptrdiff_t)
                        : longs ? va_arg(ap, long long)
                                : va_arg(ap, int);
            unsigned long long mag = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
            out_unsigned(&o, mag, 10, width, left, v < 0, zero);
            break;
        }
        case 'u':
        case 'x': {
            unsigned long long v = size_t_arg ? va_arg(ap, size_t)
                                 : longs ? va_arg(ap, unsigned long long)
                                         : va_arg(ap, unsigned);
            out_unsigned(&o, v, *f == 'x' ? 16 : 10, width, left, false, zero);
            break;
        }
        case 'p': {
            out_char(&o, '0');
            out_char(&o, 'x');
            out_unsigned(&o, (uintptr_t)va_arg(ap, void *), 16, 0, false, false, false);
            break;
        }
        case '%':
            out_char(&o, '%');
            break;
        default:
            return o.len;  /* unsupported conversion: stop rather than guess */
        }
    }
    if (cap)
        buf[o.len < cap ? o.len : cap - 1] = '\0';
    return o.len;
}

size_t cm_format(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = cm_vformat(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

void cm_write_fd(int fd, const char *buf, size_t len)
{
    int saved = errno;
    while (len) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        buf += w;
        len -= (size_t)w;
    }
    errno = saved;
}

static void vmessage(const char *fmt, va_list ap)
{
    char line[512];
    size_t n = cm_format(line, sizeof line, "cmalloc: ");
    n += cm_vformat(line + n, sizeof line - n, fmt, ap);
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    cm_write_fd(STDERR_FILENO, line, n);
}

void cm_message(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
}

_Noreturn void cm_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    abort();
}

const char *cm_getenv(const char *name)
{
    size_t len = strlen(name);
    if (!environ)
        return NULL;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            return *e + len + 1;
    }
    return NULL;
}

/* Parses the kernel's CPU list format, e.g. "0-3,8,10-11". */
static unsigned count_cpu_list(const char *s)
{
    unsigned count = 0;
    while (*s >= '0' && *s <= '9') {
        unsigned lo = 0, hi;
        while (*s >= '0' && *s <= '9')
            lo = lo * 10 + (unsigned)(*s++ - '0');
        hi = lo;
        if (*s == '-') {
            s++;
            hi = 0;
            while (*s >= '0' && *s <= '9')
                hi = hi * 10 + (unsigned)(*s++ - '0');
        }
        if (hi >= lo)
            count += hi - lo + 1;
        if (*s != ',')
            break;
        s++;
    }
    return count;
}

unsigned cm_online_cpus(void)
{
    int saved = errno;
    unsigned n = 0;
    int fd = open("/sys/devices/system/cpu/online", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[256];
        ssize_t r = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (r > 0) {
            buf[r] = '\0';
            n = count_cpu_list(buf);
        }
    }
    if (n == 0) {
        cpu_set_t set;
        if (syscall(SYS_sched_getaffinity, 0, sizeof set, &set) > 0)
            n = (unsigned)CPU_COUNT(&set);
    }
    errno = saved;
    return n ? n : 1;
}

/* Two secrets from the kernel's AT_RANDOM bytes (no syscall needed), mixed
 * with addresses and time so that even a missing auxv entry gives a value
 * that differs between processes. */
void cm_random_seed(uintptr_t out[2])
{
    uint64_t seed[2] = {0x9e3779b97f4a7c15ULL, 0xbf58476d1ce4e5b9ULL};
    const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
    if (r)
        memcpy(seed, r, sizeof seed);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    seed[0] ^= (uint64_t)(uintptr_t)&ts ^ (uint64_t)ts.tv_nsec;
    seed[1] ^= (uint64_t)(uintptr_t)out << 17 ^ (uint64_t)ts.tv_sec;
    for (int i = 0; i < 2; i++) {
        uint64_t z = seed[i] + 0x9e3779b97f4a7c15ULL;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        out[i] = (uintptr_t)(z ^ (z >> 31)) | 1;
    }
}
