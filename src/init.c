/* Initialisation and fork.
 *
 * Every entry point initialises lazily (the dynamic loader, other libraries'
 * constructors and TLS set-up may call malloc before our constructor runs),
 * and the constructor finishes what must not happen inside malloc: creating
 * the thread-exit key and installing the fork handlers.
 *
 * The lock order, which the fork handlers follow, is fork.c's. */
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "internal.h"

cm_lock_t cm_global_lock;
int cm_initialized;

static pthread_key_t tcache_key;
static bool tcache_key_ready;
static bool options_read_without_environ;
static int stats_fd = -1;

/* Programs such as coreutils close stderr in an atexit handler, before our
 * destructor runs, so exit-time stats go to a private copy of it. */
#define CM_STATS_FD_MIN 100

static int stats_out(void)
{
    return stats_fd >= 0 ? stats_fd : STDERR_FILENO;
}

/* A signal report has the format of the exit-time one, text when there is
 * none; it never takes a lock the interrupted thread may hold (stats.c). */
static void stats_signal_handler(int sig)
{
    (void)sig;
    int saved = errno;
    cm_stats_report_fd(stats_out(),
                       cm_opt.stats_at_exit == CM_STATS_JSON ? CM_STATS_JSON : CM_STATS_TEXT,
                       true);
    errno = saved;
}

/* A handler the program installs later replaces ours, as it would replace
 * any default; one a library installed before us stays theirs. */
static void install_stats_signal(int sig)
{
    if (!cm_prim_signal_install(sig, stats_signal_handler))
        cm_message("stats_signal: signal %d has a handler already; not replaced", sig);
}

void cm_init_slow(void)
{
    cm_lock(&cm_global_lock);
    if (!cm_initialized) {
        options_read_without_environ = !cm_prim_have_environ();
        cm_options_read();
        uintptr_t seed[2];
        cm_prim_random_seed(seed);
        cm_hot.link_secret = seed[0];
        cm_hot.free_key = seed[1];
        if (cm_opt.arena_max == 0)
            cm_opt.arena_max = cm_prim_online_cpus();
        cm_ext_attach();
        cm_sizeclass_init();
        cm_arena_boot();
        __atomic_store_n(&cm_initialized, 1, __ATOMIC_RELEASE);
    }
    cm_unlock(&cm_global_lock);
}

void cm_tcache_register_exit(struct cm_tcache *tc)
{
    if (tcache_key_ready)
        pthread_setspecific(tcache_key, tc);
}

/* When the loader allocated before libc had set up environ, the options
 * were read from an empty environment; read them again now that it is
 * there, and give this thread's cache the capacities they imply. */
static void reread_options(void)
{
    cm_options_read();
    cm_sizeclass_init();
    if (cm_tls.state == CM_TC_ACTIVE) {
        for (unsigned cls = 1; cls <= CM_NCLASSES; cls++) {
            if (!cm_tbin_enabled(&cm_tls, cls))
                continue;
            uint32_t count = cm_tbin_count(&cm_tls, cls), cap = cm_classes[cls].tcache_max;
            uint32_t now = cm_tbin_capacity(&cm_tls, cls);
            uint32_t max = cap < now ? cap : now;
            cm_tcache_set_capacity(&cm_tls, cls, count > max ? count : max);
        }
    }
}

/* A second copy of the library in the process (a system-wide preload and
 * an LD_PRELOAD of another path, or a dlopen) does not own malloc: the
 * first copy does all the work, and this one stays dormant, with no
 * initialisation, fork handlers, messages or reports of its own. */
static bool dormant;

__attribute__((constructor)) static void cm_constructor(void)
{
    if (cm_prim_defined_elsewhere("malloc", (const void *)cm_own_malloc)) {
        dormant = true;
        return;
    }
    cm_ensure_init();
    if (options_read_without_environ && cm_prim_have_environ())
        reread_options();
    if (pthread_key_create(&tcache_key, cm_tcache_thread_exit) == 0)
        tcache_key_ready = true;
    if (cm_tls.state == CM_TC_ACTIVE)
        cm_tcache_register_exit(&cm_tls);
    cm_fork_install();
    if (cm_opt.stats_at_exit != CM_STATS_NONE || cm_opt.stats_signal)
        stats_fd = cm_prim_dup_above(STDERR_FILENO, CM_STATS_FD_MIN);
    if (cm_opt.stats_signal)
        install_stats_signal(cm_opt.stats_signal);
    cm_background_enable();
#ifdef CMALLOC_MINIMAL
    if (cm_opt.hardened)
        cm_message("hardened: this cmalloc is built without hardened mode (CMALLOC_MINIMAL); "
                   "running without it");
#endif
    if (cm_opt.verbose) {
        static const char *const formats[] = {"off", "text", "json"};
        cm_message("version %s: %u arenas at most, %u size classes up to %zu bytes, "
                   "mmap threshold %zu, thread cache up to %zu bytes, trim threshold %zu, "
                   "purge delay %zu ms, background purge %s, stats at exit %s, stats signal %d, "
                   "hardened %s",
                   CMALLOC_VERSION_STRING, cm_opt.arena_max, CM_NCLASSES,
                   (size_t)CM_MAX_CLASS_SIZE, cm_opt.mmap_threshold, cm_opt.tcache_max_size,
                   cm_opt.trim_threshold, cm_opt.purge_delay_ms,
                   cm_opt.background_purge ? "on" : "off", formats[cm_opt.stats_at_exit],
                   cm_opt.stats_signal, cm_opt.hardened ? "on" : "off");
    }
}

__attribute__((destructor)) static void cm_destructor(void)
{
    if (!dormant && cm_opt.stats_at_exit != CM_STATS_NONE)
        cm_stats_report_fd(stats_out(), cm_opt.stats_at_exit, false);
}
