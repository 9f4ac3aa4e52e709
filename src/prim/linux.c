/* The OS seam on Linux (prim.h): the only file that makes system calls or
 * reads libc's state. Every function keeps errno as it found it, since
 * callers such as free() must. */
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../prim.h"

extern char **environ;

/* ---- memory ---- */

void *cm_prim_map(size_t size)
{
    int saved = errno;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    errno = saved;
    return p == MAP_FAILED ? NULL : p;
}

bool cm_prim_reserve_at(void *p, size_t size)
{
    int saved = errno;
    void *got = mmap(p, size, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    /* Kernels before 4.17 take the flag for a hint and may map elsewhere. */
    if (got != MAP_FAILED && got != p)
        munmap(got, size);
    errno = saved;
    return got == p;
}

void cm_prim_unmap(void *p, size_t size)
{
    int saved = errno;
    munmap(p, size);
    errno = saved;
}

void cm_prim_purge(void *p, size_t size)
{
    int saved = errno;
    madvise(p, size, MADV_DONTNEED);
    errno = saved;
}

bool cm_prim_protect(void *p, size_t size, bool accessible)
{
    int saved = errno;
    bool ok = mprotect(p, size, accessible ? PROT_READ | PROT_WRITE : PROT_NONE) == 0;
    errno = saved;
    return ok;
}

bool cm_prim_grow_in_place(void *p, size_t old_size, size_t new_size)
{
    int saved = errno;
    bool ok = mremap(p, old_size, new_size, 0) != MAP_FAILED;
    errno = saved;
    return ok;
}

void *cm_prim_move(void *p, size_t old_size, size_t new_size, void *target)
{
    int saved = errno;
    void *moved = mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
    errno = saved;
    return moved == MAP_FAILED ? NULL : moved;
}

void *cm_prim_sbrk(intptr_t incr)
{
    int saved = errno;
    void *p = sbrk(incr);
    errno = saved;
    return p;
}

/* ---- futex ---- */

/* futex() reports EAGAIN and EINTR through errno. */
void cm_prim_futex_wait(int *addr, int val)
{
    int saved = errno;
    syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
    errno = saved;
}

void cm_prim_futex_wake(int *addr, int count)
{
    int saved = errno;
    syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
    errno = saved;
}

/* ---- threads ---- */

struct thread_start {
    void *(*fn)(void *);
    void *arg;
    const char *name;
};

/* The start arguments live here, not on the heap: at most one thread is
 * starting at a time (the callers serialise their starts). */
static struct thread_start starting;

static void *thread_main(void *unused)
{
    (void)unused;
    struct thread_start s = starting;
    prctl(PR_SET_NAME, s.name, 0, 0, 0);
    return s.fn(s.arg);
}

bool cm_prim_thread_start(void *(*fn)(void *), void *arg, const char *name)
{
    int saved = errno;
    starting = (struct thread_start){fn, arg, name};
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    bool ok = pthread_attr_init(&attr) == 0;
    pthread_t tid;
    if (ok) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        ok = pthread_create(&tid, &attr, thread_main, NULL) == 0;
        pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = saved;
    return ok;
}

void cm_prim_sleep_ms(unsigned ms)
{
    int saved = errno;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    errno = saved;
}

/* ---- clocks ---- */

uint64_t cm_prim_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t cm_prim_now_ms_coarse(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

/* ---- files, processes, signals ---- */

void cm_prim_write(int fd, const char *buf, size_t len)
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

int cm_prim_cancel_off(void)
{
    int old = PTHREAD_CANCEL_ENABLE;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    return old;
}

void cm_prim_cancel_restore(int state)
{
    pthread_setcancelstate(state, NULL);
}

bool cm_prim_defined_elsewhere(const char *name, const void *own)
{
    int saved = errno;
    /* dlsym and dladdr1 allocate only to report an error. A program's
     * stub has the name too, but as an undefined symbol. */
    void *found = dlsym(RTLD_DEFAULT, name);
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    bool elsewhere = found && found != own &&
                     dladdr1(found, &info, (void **)&sym, RTLD_DL_SYMENT) && sym &&
                     sym->st_shndx != SHN_UNDEF && info.dli_saddr == found && info.dli_sname &&
                     strcmp(info.dli_sname, name) == 0;
    errno = saved;
    return elsewhere;
}

int cm_prim_dup_above(int fd, int min)
{
    int saved = errno;
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, min);
    errno = saved;
    return copy;
}

int cm_prim_getpid(void)
{
    return (int)getpid();
}

/* Only a signal left at its default (or ignored) gets our handler: one that
 * a library installed before us stays theirs. */
bool cm_prim_signal_install(int sig, void (*handler)(int))
{
    int saved = errno;
    struct sigaction old, sa;
    bool ok = false;
    if (sigaction(sig, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
        (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN)) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = handler;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        ok = sigaction(sig, &sa, NULL) == 0;
    }
    errno = saved;
    return ok;
}

/* ---- libc's state: the environment, CPUs, the auxiliary vector ---- */

bool cm_prim_have_environ(void)
{
    return environ != NULL;
}

const char *cm_prim_getenv(const char *name)
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

unsigned cm_prim_online_cpus(void)
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
void cm_prim_random_seed(uintptr_t out[2])
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
