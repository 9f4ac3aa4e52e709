/* Formatting and messages: a tiny printf that writes into a buffer, for
 * every report and message cmalloc prints. stdio is not safe on paths that
 * malloc itself may run (it may call malloc, or run before libc is set up),
 * and this never allocates. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

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

static void vmessage(const char *fmt, va_list ap)
{
    char line[512];
    size_t n = cm_format(line, sizeof line, "cmalloc: ");
    n += cm_vformat(line + n, sizeof line - n, fmt, ap);
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    cm_prim_write(STDERR_FILENO, line, n);
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

