/* libcmalloc-prof.so: the leak checker and heap profiler behind
 * `cmalloc-run --leaks` and `cmalloc-run --profile=FILE`, built only on the
 * public hooks API of <cmalloc.h>. It is preloaded with libcmalloc.so.1 and
 * configured by the environment (cmalloc-run sets it):
 *
 *   CMALLOC_PROF_MODE      leaks | profile
 *   CMALLOC_PROF_OUTPUT    report file (leaks: default stderr; profile: required)
 *   CMALLOC_PROF_FORMAT    profile: pprof (the default) or folded;
 *                          leaks: text (the default) or pprof
 *   CMALLOC_PROF_LEAKS     leaks: lost (the default: only blocks nothing
 *                          points to any more) or all (every block still
 *                          allocated at exit, reachable or not)
 *   CMALLOC_PROF_INTERVAL  sample interval in bytes (leaks: 0 = every
 *                          allocation; profile: default 512 KiB)
 *   CMALLOC_PROF_VALUE     profile: inuse (bytes still allocated when the
 *                          profile is written; the default) or alloc (all
 *                          bytes allocated since the start)
 *   CMALLOC_PROF_SIGNAL    profile: also write the profile, to OUTPUT.N, on
 *                          this signal (a name such as USR2, or a number)
 *
 * Every reported allocation gets its call stack, unwound with libgcc's
 * unwinder (which works without frame pointers), and a place in two tables:
 * live blocks by address, and distinct stacks with the live blocks and
 * bytes of each. Both tables live in their own mappings, never in the heap,
 * and grow by remapping, so the hook never allocates through cmalloc; what
 * the unwinder itself might allocate is not reported (the hook runs with
 * hooks off for its thread).
 *
 * Profiles are written in the legacy heap-profile format that both pprof
 * implementations (google-pprof, go tool pprof) read: a header with the
 * totals, a line per stack with its in-use and allocated objects and bytes
 * and its return addresses, then the process's memory map under
 * MAPPED_LIBRARIES, from which pprof finds the modules to symbolize. The
 * folded format (flamegraph.pl, speedscope, inferno) has a line per stack,
 * "outermost;...;innermost bytes". Sampled values are weighted by the
 * sampling, so both are estimates of the true bytes.
 *
 * At exit the leak report sorts the blocks still allocated the way a
 * conservative collector would. The roots are every writable segment of
 * every loaded module (the program's globals, and the C library's and the
 * dynamic loader's state: stdio buffers, locales, link maps), the
 * thread-local storage of the exiting thread, and the blocks the dynamic
 * loader allocates itself (the TLS vectors of threads, which hang from
 * thread stacks kept for reuse). A block that a root or a reachable block
 * points to, at its start or inside, is reachable. Only the others are
 * lost, and only they are reported unless CMALLOC_PROF_LEAKS=all; a lost
 * block that only other lost blocks point to is "indirectly lost", as
 * Valgrind says. Frames are named from the ELF symbol tables of the
 * modules (.symtab when the file still has it, else .dynsym), with the
 * source file and line from addr2line where the module has debug
 * information. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <unwind.h>

#include "cmalloc.h"

#define MAX_FRAMES 32
#define MAX_OWN_RANGES 16
#define STACKS_MAX (1u << 18)

enum prof_mode { MODE_LEAKS, MODE_PROFILE };
enum prof_format { FORMAT_TEXT, FORMAT_PPROF, FORMAT_FOLDED };

struct stack {
    uint64_t hash;
    uint32_t depth;
    uint32_t used;
    uint64_t live_blocks;
    uint64_t live_bytes;   /* weighted */
    uint64_t alloc_bytes;  /* weighted, since the start */
    uint64_t live_objs;    /* weighted: the objects the samples stand for */
    uint64_t alloc_objs;
    uintptr_t frames[MAX_FRAMES];
};

struct live {
    uintptr_t ptr;     /* 0: empty slot */
    uint32_t stack;
    uint64_t bytes;    /* weighted */
    uint64_t size;     /* as requested */
    uint64_t objs;     /* weighted */
};

struct table {
    void *slots;
    size_t cap;   /* a power of two */
    size_t used;
};

static struct {
    enum prof_mode mode;
    enum prof_format format;
    bool leaks_all;        /* report reachable blocks too */
    bool value_alloc;      /* profile alloc_bytes rather than live_bytes */
    const char *output;
    size_t interval;
    int out_fd;
    pthread_mutex_t lock;
    struct table stacks;   /* struct stack */
    uint32_t *stack_ids;   /* the used slots of stacks, in order of use */
    struct table live;     /* struct live */
    uint64_t dropped;      /* blocks not recorded: a table could not grow */
    uintptr_t own_lo[MAX_OWN_RANGES], own_hi[MAX_OWN_RANGES];
    unsigned nown;
    uintptr_t own_base[2]; /* load biases of cmalloc and of this module */
    unsigned nown_base;
    int signal_pipe[2];
    unsigned dumps;
    bool active;
} prof = {.lock = PTHREAD_MUTEX_INITIALIZER, .out_fd = -1, .signal_pipe = {-1, -1}};

/* ---- tables in their own mappings ---- */

static void *map_zeroed(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static struct live *live_slot(struct live *slots, size_t cap, uintptr_t ptr)
{
    size_t i = mix(ptr) & (cap - 1);
    while (slots[i].ptr && slots[i].ptr != ptr)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static bool live_grow(void)
{
    size_t cap = prof.live.cap ? prof.live.cap * 2 : 1u << 16;
    struct live *fresh = map_zeroed(cap * sizeof(struct live)), *old = prof.live.slots;
    if (!fresh)
        return false;
    for (size_t i = 0; i < prof.live.cap; i++) {
        if (old[i].ptr)
            *live_slot(fresh, cap, old[i].ptr) = old[i];
    }
    if (old)
        munmap(old, prof.live.cap * sizeof(struct live));
    prof.live.slots = fresh;
    prof.live.cap = cap;
    return true;
}

/* Linear probing keeps deletion exact: later entries of the cluster that
 * could live in the hole move back into it. */
static void live_delete(struct live *hole)
{
    struct live *slots = prof.live.slots;
    size_t cap = prof.live.cap, i = (size_t)(hole - slots), j = i;
    for (;;) {
        j = (j + 1) & (cap - 1);
        if (!slots[j].ptr)
            break;
        size_t home = mix(slots[j].ptr) & (cap - 1);
        bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            slots[i] = slots[j];
            i = j;
        }
    }
    slots[i].ptr = 0;
    prof.live.used--;
}

static uint32_t stack_intern(const uintptr_t *frames, uint32_t depth)
{
    uint64_t h = depth;
    for (uint32_t i = 0; i < depth; i++)
        h = mix(h ^ frames[i]);
    struct stack *stacks = prof.stacks.slots;
    size_t i = h & (prof.stacks.cap - 1);
    for (size_t probes = 0; probes < prof.stacks.cap; probes++, i = (i + 1) & (prof.stacks.cap - 1)) {
        struct stack *s = &stacks[i];
        if (!s->used) {
            if (prof.stacks.used * 4 >= prof.stacks.cap * 3)
                return UINT32_MAX;
            s->used = 1;
            s->hash = h;
            s->depth = depth;
            memcpy(s->frames, frames, depth * sizeof *frames);
            prof.stack_ids[prof.stacks.used++] = (uint32_t)i;
            return (uint32_t)i;
        }
        if (s->hash == h && s->depth == depth &&
            memcmp(s->frames, frames, depth * sizeof *frames) == 0)
            return (uint32_t)i;
    }
    return UINT32_MAX;
}

/* ---- stacks ---- */

static bool is_own_frame(uintptr_t ip)
{
    for (unsigned i = 0; i < prof.nown; i++) {
        if (ip >= prof.own_lo[i] && ip < prof.own_hi[i])
            return true;
    }
    return false;
}

struct unwind_state {
    uintptr_t *frames;
    uint32_t depth;
    bool past_allocator;
};

static _Unwind_Reason_Code unwind_step(struct _Unwind_Context *ctx, void *arg)
{
    struct unwind_state *st = arg;
    uintptr_t ip = _Unwind_GetIP(ctx);
    if (!ip)
        return _URC_END_OF_STACK;
    /* The first frames are this hook and cmalloc's own; the program's
     * call into the malloc family comes after them. */
    if (!st->past_allocator) {
        if (is_own_frame(ip))
            return _URC_NO_REASON;
        st->past_allocator = true;
    }
    st->frames[st->depth++] = ip;
    return st->depth == MAX_FRAMES ? _URC_END_OF_STACK : _URC_NO_REASON;
}

static uint32_t capture_stack(uintptr_t *frames)
{
    struct unwind_state st = {frames, 0, false};
    _Unwind_Backtrace(unwind_step, &st);
    return st.depth;
}

static int note_own_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    const uintptr_t *anchors = arg;
    for (int a = 0; a < 2; a++) {
        for (int i = 0; i < info->dlpi_phnum; i++) {
            const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
            uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
            if (ph->p_type != PT_LOAD || anchors[a] < lo || anchors[a] >= hi)
                continue;
            if (prof.nown_base < 2)
                prof.own_base[prof.nown_base++] = info->dlpi_addr;
            for (int k = 0; k < info->dlpi_phnum && prof.nown < MAX_OWN_RANGES; k++) {
                const ElfW(Phdr) *seg = &info->dlpi_phdr[k];
                if (seg->p_type == PT_LOAD && (seg->p_flags & PF_X)) {
                    prof.own_lo[prof.nown] = info->dlpi_addr + seg->p_vaddr;
                    prof.own_hi[prof.nown++] = info->dlpi_addr + seg->p_vaddr + seg->p_memsz;
                }
            }
        }
    }
    return 0;
}

/* ---- the hook ---- */

static void forget(uintptr_t ptr)
{
    if (!prof.live.cap)
        return;
    struct live *l = live_slot(prof.live.slots, prof.live.cap, ptr);
    if (!l->ptr)
        return;
    struct stack *s = &((struct stack *)prof.stacks.slots)[l->stack];
    s->live_blocks--;
    s->live_bytes -= l->bytes;
    s->live_objs -= l->objs;
    live_delete(l);
}

static void remember(uintptr_t ptr, uint64_t size, uint64_t bytes, const uintptr_t *frames,
                     uint32_t depth)
{
    uint32_t id = stack_intern(frames, depth);
    if (id == UINT32_MAX || ((prof.live.used + 1) * 2 > prof.live.cap && !live_grow())) {
        prof.dropped++;
        return;
    }
    /* A block we missed the free of (freed from inside a hook) is stale. */
    forget(ptr);
    struct live *l = live_slot(prof.live.slots, prof.live.cap, ptr);
    prof.live.used++;
    l->ptr = ptr;
    l->stack = id;
    l->bytes = bytes;
    l->size = size;
    /* A sample of weight w stands for about w / size objects of its size. */
    l->objs = size && bytes > size ? bytes / size : 1;
    struct stack *s = &((struct stack *)prof.stacks.slots)[id];
    s->live_blocks++;
    s->live_bytes += bytes;
    s->alloc_bytes += bytes;
    s->live_objs += l->objs;
    s->alloc_objs += l->objs;
}

static void on_event(const struct cmalloc_event *ev, void *arg)
{
    (void)arg;
    uintptr_t frames[MAX_FRAMES];
    uint32_t depth = 0;
    if (ev->type != CMALLOC_EVENT_FREE)
        depth = capture_stack(frames);
    uint64_t bytes = prof.mode == MODE_LEAKS ? ev->size : ev->weight;
    /* Off in a forked child whose tables were locked at the fork. */
    if (!__atomic_load_n(&prof.active, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&prof.lock);
    if (prof.active) {
        if (ev->type == CMALLOC_EVENT_FREE)
            forget((uintptr_t)ev->ptr);
        else if (ev->type == CMALLOC_EVENT_REALLOC)
            forget((uintptr_t)ev->old_ptr);
        if (ev->type != CMALLOC_EVENT_FREE)
            remember((uintptr_t)ev->ptr, ev->size, bytes, frames, depth);
    }
    pthread_mutex_unlock(&prof.lock);
}

/* ---- symbols ---- */

struct module {
    char path[PATH_MAX];
    uintptr_t base;       /* load bias */
    const ElfW(Sym) *syms;
    size_t nsyms;
    const char *strtab;
    void *map;
    size_t map_size;
    /* addr2line, started on the first frame of the module that needs a
     * source line, answers one address per line on its pipes. */
    pid_t a2l_pid;
    FILE *a2l_to, *a2l_from;
    bool a2l_tried;
};

#define MAX_MODULES 256
static struct module modules[MAX_MODULES];
static unsigned nmodules;

static bool section_symbols(struct module *m, const ElfW(Ehdr) *eh, const ElfW(Shdr) *sh,
                            unsigned type)
{
    for (unsigned i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != type || sh[i].sh_link >= eh->e_shnum || !sh[i].sh_entsize)
            continue;
        const ElfW(Shdr) *strs = &sh[sh[i].sh_link];
        if (sh[i].sh_offset + sh[i].sh_size > m->map_size ||
            strs->sh_offset + strs->sh_size > m->map_size)
            continue;
        m->syms = (const ElfW(Sym) *)((const char *)m->map + sh[i].sh_offset);
        m->nsyms = sh[i].sh_size / sh[i].sh_entsize;
        m->strtab = (const char *)m->map + strs->sh_offset;
        return true;
    }
    return false;
}

static void module_load_symbols(struct module *m)
{
    int fd = open(m->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size > (off_t)sizeof(ElfW(Ehdr))) {
        void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map != MAP_FAILED) {
            m->map = map;
            m->map_size = (size_t)st.st_size;
            const ElfW(Ehdr) *eh = map;
            if (memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_shoff &&
                eh->e_shoff + (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) <= m->map_size) {
                const ElfW(Shdr) *sh = (const ElfW(Shdr) *)((const char *)map + eh->e_shoff);
                if (!section_symbols(m, eh, sh, SHT_SYMTAB))
                    section_symbols(m, eh, sh, SHT_DYNSYM);
            }
        }
    }
    close(fd);
}

static struct module *module_of(uintptr_t ip)
{
    Dl_info info;
    struct link_map *lm = NULL;
    if (!dladdr1((void *)ip, &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm)
        return NULL;
    for (unsigned i = 0; i < nmodules; i++) {
        if (modules[i].base == lm->l_addr)
            return &modules[i];
    }
    if (nmodules == MAX_MODULES)
        return NULL;
    struct module *m = &modules[nmodules++];
    m->base = lm->l_addr;
    const char *name = lm->l_name && lm->l_name[0] ? lm->l_name : NULL;
    if (!name) {
        ssize_t n = readlink("/proc/self/exe", m->path, sizeof m->path - 1);
        m->path[n > 0 ? n : 0] = '\0';
    } else {
        snprintf(m->path, sizeof m->path, "%s", name);
    }
    module_load_symbols(m);
    return m;
}

static void a2l_start(struct module *m)
{
    m->a2l_tried = true;
    int to[2], from[2];
    if (pipe2(to, O_CLOEXEC) != 0)
        return;
    if (pipe2(from, O_CLOEXEC) != 0) {
        close(to[0]);
        close(to[1]);
        return;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, to[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, from[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    char *argv[] = {"addr2line", "-e", m->path, NULL};
    /* Neither cmalloc nor this module preloaded into it: it would report
     * its own leaks. */
    char *envp[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", NULL};
    pid_t pid;
    int err = posix_spawnp(&pid, "addr2line", &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    close(to[0]);
    close(from[1]);
    if (err == 0) {
        m->a2l_to = fdopen(to[1], "w");
        m->a2l_from = fdopen(from[0], "r");
    }
    if (err != 0 || !m->a2l_to || !m->a2l_from) {
        if (m->a2l_to)
            fclose(m->a2l_to);
        else
            close(to[1]);
        if (m->a2l_from)
            fclose(m->a2l_from);
        else
            close(from[0]);
        m->a2l_to = m->a2l_from = NULL;
        if (err == 0)
            waitpid(pid, NULL, 0);
        return;
    }
    m->a2l_pid = pid;
}

/* "file:line" of the module-relative address, or "" without debug info. */
static void source_line(struct module *m, uintptr_t rel, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!m->a2l_tried)
        a2l_start(m);
    if (!m->a2l_to)
        return;
    char line[PATH_MAX + 64];
    if (fprintf(m->a2l_to, "0x%lx\n", (unsigned long)rel) < 0 || fflush(m->a2l_to) != 0 ||
        !fgets(line, sizeof line, m->a2l_from))
        return;
    line[strcspn(line, "\n")] = '\0';
    char *extra = strstr(line, " (discriminator");
    if (extra)
        *extra = '\0';
    size_t len = strlen(line);
    if (line[0] == '?' || len < 2 || strcmp(line + len - 2, ":0") == 0 ||
        strcmp(line + len - 2, ":?") == 0)
        return;
    snprintf(buf, cap, "%s", line);
}

static void a2l_stop_all(void)
{
    for (unsigned i = 0; i < nmodules; i++) {
        struct module *m = &modules[i];
        if (!m->a2l_to)
            continue;
        fclose(m->a2l_to);
        fclose(m->a2l_from);
        waitpid(m->a2l_pid, NULL, 0);
        m->a2l_to = m->a2l_from = NULL;
    }
}

/* "function+0xoff (module+0xoff)", or "module+0xoff" with no symbol, then
 * " file:line" when asked for and known. */
static void describe_frame(uintptr_t ip, bool caller, bool with_line, char *buf, size_t cap,
                           const char **fn_out, size_t *fn_len)
{
    /* A return address points after the call; look up the call itself. */
    uintptr_t where = caller ? ip - 1 : ip;
    struct module *m = module_of(where);
    const char *module = m ? strrchr(m->path, '/') : NULL;
    module = module ? module + 1 : m ? m->path : "?";
    uintptr_t rel = m ? where - m->base : where;
    const ElfW(Sym) *best = NULL;
    if (m) {
        for (size_t i = 0; i < m->nsyms; i++) {
            const ElfW(Sym) *s = &m->syms[i];
            if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || s->st_shndx == SHN_UNDEF)
                continue;
            if (rel >= s->st_value && rel < s->st_value + (s->st_size ? s->st_size : 1) &&
                (!best || s->st_size < best->st_size))
                best = s;
        }
    }
    *fn_out = NULL;
    *fn_len = 0;
    int n;
    if (best) {
        const char *name = m->strtab + best->st_name;
        n = snprintf(buf, cap, "%s+0x%lx (%s+0x%lx)", name, (unsigned long)(rel - best->st_value),
                     module, (unsigned long)rel);
        *fn_out = name;
        *fn_len = strlen(name);
    } else {
        n = snprintf(buf, cap, "%s+0x%lx", module, (unsigned long)rel);
    }
    if (with_line && m && n > 0 && (size_t)n + 2 < cap) {
        source_line(m, rel, buf + n + 1, cap - (size_t)n - 1);
        if (buf[n + 1])
            buf[n] = ' ';
    }
}

/* ---- reports ---- */

static int by_live_bytes(const void *a, const void *b)
{
    const struct stack *x = *(const struct stack *const *)a, *y = *(const struct stack *const *)b;
    if (x->live_bytes != y->live_bytes)
        return x->live_bytes < y->live_bytes ? 1 : -1;
    return x->live_blocks < y->live_blocks ? 1 : x->live_blocks > y->live_blocks ? -1 : 0;
}

static bool wanted(const struct stack *s, bool by_alloc)
{
    return s->used && (by_alloc ? s->alloc_bytes : s->live_blocks);
}

/* The stacks that own live blocks (or, by_alloc, ever allocated any),
 * copied out of the table so that writing the report needs no lock. */
static struct stack *snapshot(bool by_alloc, size_t *count)
{
    pthread_mutex_lock(&prof.lock);
    size_t n = 0;
    struct stack *all = prof.stacks.slots;
    for (size_t k = 0; k < prof.stacks.used; k++)
        n += wanted(&all[prof.stack_ids[k]], by_alloc);
    struct stack *copy = n ? map_zeroed(n * sizeof *copy) : NULL;
    size_t k = 0;
    for (size_t u = 0; copy && u < prof.stacks.used; u++) {
        size_t i = prof.stack_ids[u];
        if (wanted(&all[i], by_alloc))
            copy[k++] = all[i];
    }
    pthread_mutex_unlock(&prof.lock);
    *count = k;
    return copy;
}

static struct stack **sorted(struct stack *copy, size_t n)
{
    struct stack **order = n ? map_zeroed(n * sizeof *order) : NULL;
    for (size_t i = 0; order && i < n; i++)
        order[i] = &copy[i];
    if (order)
        qsort(order, n, sizeof *order, by_live_bytes);
    return order;
}

/* A module's code in the format of /proc/self/maps. The vDSO, which has no
 * file, is left out; so are the data segments, which pprof has no use for. */
static int write_mapping(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    FILE *out = arg;
    char path[PATH_MAX];
    const char *name = info->dlpi_name;
    if (!name || !name[0]) {
        ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
        path[n > 0 ? n : 0] = '\0';
        name = path;
    }
    if (name[0] != '/')
        return 0;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
        uintptr_t hi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
        fprintf(out, "%lx-%lx r-xp %08lx 00:00 0 %s\n", (unsigned long)lo, (unsigned long)hi,
                (unsigned long)(ph->p_offset & ~(page - 1)), name);
    }
    return 0;
}

/* The legacy heap profile of pprof. The first address of a stack is where
 * the program called the allocator; pprof treats the others as return
 * addresses and looks up the call before each, so the first is moved back
 * into its call instruction too. */
static void write_pprof(FILE *out, struct stack **order, size_t n)
{
    uint64_t t[4] = {0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        t[0] += order[i]->live_objs;
        t[1] += order[i]->live_bytes;
        t[2] += order[i]->alloc_objs;
        t[3] += order[i]->alloc_bytes;
    }
    fprintf(out, "heap profile: %llu: %llu [%llu: %llu] @ heapprofile\n", (unsigned long long)t[0],
            (unsigned long long)t[1], (unsigned long long)t[2], (unsigned long long)t[3]);
    for (size_t i = 0; i < n; i++) {
        const struct stack *s = order[i];
        fprintf(out, "%llu: %llu [%llu: %llu] @", (unsigned long long)s->live_objs,
                (unsigned long long)s->live_bytes, (unsigned long long)s->alloc_objs,
                (unsigned long long)s->alloc_bytes);
        for (uint32_t f = 0; f < s->depth; f++)
            fprintf(out, " 0x%lx", (unsigned long)(f ? s->frames[f] : s->frames[f] - 1));
        fputc('\n', out);
    }
    fputs("\nMAPPED_LIBRARIES:\n", out);
    dl_iterate_phdr(write_mapping, out);
}

/* ---- leak classification ---- */

enum reach { LOST, INDIRECT, REACHABLE };

struct block {
    uintptr_t ptr;
    uint64_t size;
    uint32_t stack;
    uint32_t reach;
};

static struct {
    struct block *blocks;
    size_t n;
    size_t *work; /* indices of reachable blocks whose contents are unscanned */
    size_t nwork;
} scan;

static int by_ptr(const void *a, const void *b)
{
    const struct block *x = a, *y = b;
    return x->ptr < y->ptr ? -1 : x->ptr > y->ptr;
}

/* The block that holds the address, at its start or inside it. */
static struct block *block_at(uintptr_t addr)
{
    size_t lo = 0, hi = scan.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (scan.blocks[mid].ptr <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!lo)
        return NULL;
    struct block *b = &scan.blocks[lo - 1];
    return addr < b->ptr + (b->size ? b->size : 1) ? b : NULL;
}

/* Marks what the words of [lo, hi) point to as `to`, when it is less
 * reachable than that so far. */
static void scan_range(uintptr_t lo, uintptr_t hi, enum reach to, const struct block *self)
{
    lo = (lo + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
    for (uintptr_t a = lo; a + sizeof(uintptr_t) <= hi; a += sizeof(uintptr_t)) {
        struct block *b = block_at(*(const uintptr_t *)a);
        if (!b || b == self || b->reach >= to)
            continue;
        b->reach = to;
        if (to == REACHABLE)
            scan.work[scan.nwork++] = (size_t)(b - scan.blocks);
    }
}

static bool is_own_module(uintptr_t base)
{
    for (unsigned i = 0; i < prof.nown_base; i++)
        if (prof.own_base[i] == base)
            return true;
    return false;
}

static int scan_module_roots(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    /* cmalloc's own state points into its heap, not to live blocks. */
    if (is_own_module(info->dlpi_addr))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W))
            scan_range(lo, lo + ph->p_memsz, REACHABLE, NULL);
        else if (ph->p_type == PT_TLS && info->dlpi_tls_data)
            scan_range((uintptr_t)info->dlpi_tls_data,
                       (uintptr_t)info->dlpi_tls_data + ph->p_memsz, REACHABLE, NULL);
    }
    return 0;
}

static bool in_loader(uintptr_t ip)
{
    Dl_info info;
    if (!dladdr((void *)ip, &info) || !info.dli_fname)
        return false;
    const char *base = strrchr(info.dli_fname, '/');
    base = base ? base + 1 : info.dli_fname;
    return strncmp(base, "ld-linux", 8) == 0 || strncmp(base, "ld.so", 5) == 0 ||
           strncmp(base, "ld64.so", 7) == 0;
}

/* Sorts the blocks of the live table (copied into scan.blocks) into lost,
 * indirectly lost and reachable. */
static bool classify(void)
{
    pthread_mutex_lock(&prof.lock);
    size_t n = prof.live.used;
    scan.blocks = n ? map_zeroed(n * sizeof *scan.blocks) : NULL;
    scan.work = n ? map_zeroed(n * sizeof *scan.work) : NULL;
    if (n && (!scan.blocks || !scan.work)) {
        pthread_mutex_unlock(&prof.lock);
        return false;
    }
    const struct live *live = prof.live.slots;
    size_t k = 0;
    for (size_t i = 0; i < prof.live.cap && k < n; i++) {
        if (live[i].ptr)
            scan.blocks[k++] = (struct block){live[i].ptr, live[i].size, live[i].stack, LOST};
    }
    pthread_mutex_unlock(&prof.lock);
    scan.n = k;
    qsort(scan.blocks, scan.n, sizeof *scan.blocks, by_ptr);

    /* The dynamic loader's own blocks (the TLS vectors of threads, link
     * maps) hang from thread control blocks in cached thread stacks, which
     * are no roots: the blocks it allocates itself count as roots. */
    for (size_t i = 0; i < scan.n; i++) {
        struct block *b = &scan.blocks[i];
        const struct stack *s = &((const struct stack *)prof.stacks.slots)[b->stack];
        if (s->depth && in_loader(s->frames[0] - 1)) {
            b->reach = REACHABLE;
            scan.work[scan.nwork++] = i;
        }
    }
    dl_iterate_phdr(scan_module_roots, NULL);
    /* The exiting thread's control block: the C library keeps its
     * thread's dynamic TLS vector and thread-specific data there. */
    uintptr_t tp = (uintptr_t)__builtin_thread_pointer();
    scan_range(tp, tp + 2048, REACHABLE, NULL);
    while (scan.nwork) {
        const struct block *b = &scan.blocks[scan.work[--scan.nwork]];
        scan_range(b->ptr, b->ptr + b->size, REACHABLE, b);
    }
    for (size_t i = 0; i < scan.n; i++) {
        const struct block *b = &scan.blocks[i];
        if (b->reach == LOST)
            scan_range(b->ptr, b->ptr + b->size, INDIRECT, b);
    }
    return true;
}

/* Per stack and kind (lost, indirectly lost or reachable): a copy of the
 * stack whose live and alloc fields count the blocks and bytes of that
 * kind, and whose `used` field holds the kind (an enum reach). */
static struct stack *leak_groups(size_t *count)
{
    size_t cap = 3 * scan.n;
    struct stack *groups = cap ? map_zeroed(cap * sizeof *groups) : NULL;
    /* Slot of (stack, kind) in groups, per stack table slot. */
    uint32_t *slot = cap ? map_zeroed(STACKS_MAX * 3 * sizeof *slot) : NULL;
    size_t n = 0;
    const struct stack *all = prof.stacks.slots;
    for (size_t i = 0; groups && slot && i < scan.n; i++) {
        const struct block *b = &scan.blocks[i];
        if (b->reach == REACHABLE && !prof.leaks_all)
            continue;
        uint32_t *g = &slot[b->stack * 3 + b->reach];
        if (!*g) {
            groups[n] = all[b->stack];
            groups[n].used = b->reach;
            groups[n].live_blocks = groups[n].live_bytes = 0;
            groups[n].live_objs = groups[n].alloc_objs = groups[n].alloc_bytes = 0;
            *g = (uint32_t)++n;
        }
        struct stack *s = &groups[*g - 1];
        s->live_blocks++;
        s->live_bytes += b->size;
        s->live_objs++;
        s->alloc_objs++;
        s->alloc_bytes += b->size;
    }
    if (slot)
        munmap(slot, STACKS_MAX * 3 * sizeof *slot);
    *count = n;
    return groups;
}

static void write_leaks(FILE *out)
{
    if (!classify()) {
        fprintf(out, "cmalloc leaks: cannot map the tables of the leak report\n");
        return;
    }
    size_t n;
    struct stack *groups = leak_groups(&n);
    struct stack **order = sorted(groups, n);
    if (prof.format == FORMAT_PPROF) {
        write_pprof(out, order, n);
    } else {
        uint64_t count[3] = {0, 0, 0}, bytes[3] = {0, 0, 0};
        for (size_t i = 0; i < scan.n; i++) {
            count[scan.blocks[i].reach]++;
            bytes[scan.blocks[i].reach] += scan.blocks[i].size;
        }
        fprintf(out,
                "cmalloc leaks: %llu bytes in %llu blocks lost (%llu bytes in %llu blocks of them "
                "indirectly)\n",
                (unsigned long long)(bytes[LOST] + bytes[INDIRECT]),
                (unsigned long long)(count[LOST] + count[INDIRECT]),
                (unsigned long long)bytes[INDIRECT], (unsigned long long)count[INDIRECT]);
        fprintf(out,
                "cmalloc leaks: %llu bytes in %llu blocks still reachable at exit (%s)\n",
                (unsigned long long)bytes[REACHABLE], (unsigned long long)count[REACHABLE],
                prof.leaks_all ? "listed" : "not listed; cmalloc-run --leaks-all lists them");
        if (prof.dropped)
            fprintf(out, "cmalloc leaks: %llu allocations could not be recorded (tables full)\n",
                    (unsigned long long)prof.dropped);
        static const char *const kind[] = {"lost", "indirectly lost", "still reachable"};
        for (size_t i = 0; order && i < n; i++) {
            const struct stack *s = order[i];
            fprintf(out, "\n%llu bytes in %llu blocks %s, allocated from:\n",
                    (unsigned long long)s->live_bytes, (unsigned long long)s->live_blocks,
                    kind[s->used]);
            for (uint32_t f = 0; f < s->depth; f++) {
                char line[2 * PATH_MAX + 256];
                const char *fn;
                size_t len;
                describe_frame(s->frames[f], true, true, line, sizeof line, &fn, &len);
                fprintf(out, "    #%u 0x%lx %s\n", f, (unsigned long)s->frames[f], line);
                if (fn && strcmp(fn, "main") == 0)
                    break;
            }
        }
        a2l_stop_all();
    }
    if (order)
        munmap(order, n * sizeof *order);
    if (groups)
        munmap(groups, 3 * scan.n * sizeof *groups);
}

static void write_folded(FILE *out, struct stack **order, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct stack *s = order[i];
        uint64_t value = prof.value_alloc ? s->alloc_bytes : s->live_bytes;
        if (!value)
            continue;
        for (uint32_t f = s->depth; f-- > 0;) {
            char line[PATH_MAX + 256];
            const char *fn;
            size_t len;
            describe_frame(s->frames[f], true, false, line, sizeof line, &fn, &len);
            if (fn) {
                fwrite(fn, 1, len, out);
            } else {
                /* Separators of the format must not appear in a frame. */
                for (char *c = line; *c; c++)
                    if (*c == ';' || *c == ' ')
                        *c = '_';
                fputs(line, out);
            }
            fputc(f ? ';' : ' ', out);
        }
        if (!s->depth)
            fputs("[unknown] ", out);
        fprintf(out, "%llu\n", (unsigned long long)value);
    }
}

static void write_profile(const char *path)
{
    FILE *out = fopen(path, "w");
    if (!out) {
        dprintf(prof.out_fd >= 0 ? prof.out_fd : 2, "cmalloc-prof: cannot write %s: %s\n", path,
                strerror(errno));
        return;
    }
    /* pprof chooses between in-use and allocated bytes itself. */
    bool by_alloc = prof.value_alloc || prof.format == FORMAT_PPROF;
    size_t n;
    struct stack *copy = snapshot(by_alloc, &n);
    struct stack **order = sorted(copy, n);
    if (prof.format == FORMAT_PPROF)
        write_pprof(out, order, order ? n : 0);
    else
        write_folded(out, order, order ? n : 0);
    if (order)
        munmap(order, n * sizeof *order);
    if (copy)
        munmap(copy, n * sizeof *copy);
    fclose(out);
}

/* Writes the profile when the signal arrives: the handler only writes a
 * byte to a pipe, which is safe in any context, and this thread does the
 * rest with no lock of the interrupted thread held. */
static void *signal_dumper(void *arg)
{
    (void)arg;
    char byte;
    while (read(prof.signal_pipe[0], &byte, 1) == 1 || errno == EINTR) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s.%u", prof.output, ++prof.dumps);
        write_profile(path);
    }
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    char byte = 1;
    if (write(prof.signal_pipe[1], &byte, 1) < 0)
        errno = saved;
    errno = saved;
}

static int parse_signal(const char *s)
{
    static const struct {
        const char *name;
        int sig;
    } names[] = {{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"HUP", SIGHUP},
                 {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"URG", SIGURG}};
    if (strncasecmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(s, names[i].name) == 0)
            return names[i].sig;
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end && v > 0 && v < NSIG ? (int)v : -1;
}

static void warn(const char *what, const char *value)
{
    dprintf(2, "cmalloc-prof: %s: '%s'; the profiler is off\n", what, value);
}

static bool configure(void)
{
    const char *mode = getenv("CMALLOC_PROF_MODE");
    if (!mode || !*mode)
        return false;
    if (strcmp(mode, "leaks") == 0) {
        prof.mode = MODE_LEAKS;
    } else if (strcmp(mode, "profile") == 0) {
        prof.mode = MODE_PROFILE;
        prof.interval = 512 * 1024;
    } else {
        warn("unknown CMALLOC_PROF_MODE (expected leaks or profile)", mode);
        return false;
    }
    prof.format = prof.mode == MODE_LEAKS ? FORMAT_TEXT : FORMAT_PPROF;
    const char *format = getenv("CMALLOC_PROF_FORMAT");
    if (format && *format) {
        if (strcmp(format, "pprof") == 0)
            prof.format = FORMAT_PPROF;
        else if (strcmp(format, "folded") == 0 && prof.mode == MODE_PROFILE)
            prof.format = FORMAT_FOLDED;
        else if (strcmp(format, "text") == 0 && prof.mode == MODE_LEAKS)
            prof.format = FORMAT_TEXT;
        else {
            warn("bad CMALLOC_PROF_FORMAT (expected pprof or folded with profile mode, text or "
                 "pprof with leaks mode)",
                 format);
            return false;
        }
    }
    const char *leaks = getenv("CMALLOC_PROF_LEAKS");
    if (leaks && *leaks) {
        if (prof.mode != MODE_LEAKS || (strcmp(leaks, "lost") && strcmp(leaks, "all"))) {
            warn("bad CMALLOC_PROF_LEAKS (expected lost or all, with leaks mode)", leaks);
            return false;
        }
        prof.leaks_all = strcmp(leaks, "all") == 0;
    }
    prof.output = getenv("CMALLOC_PROF_OUTPUT");
    if (prof.output && !*prof.output)
        prof.output = NULL;
    if (prof.mode == MODE_PROFILE && !prof.output) {
        warn("profile mode needs CMALLOC_PROF_OUTPUT", "");
        return false;
    }
    const char *value = getenv("CMALLOC_PROF_VALUE");
    if (value && *value) {
        if (prof.mode != MODE_PROFILE || (strcmp(value, "inuse") && strcmp(value, "alloc"))) {
            warn("bad CMALLOC_PROF_VALUE (expected inuse or alloc, with profile mode)", value);
            return false;
        }
        prof.value_alloc = strcmp(value, "alloc") == 0;
    }
    const char *interval = getenv("CMALLOC_PROF_INTERVAL");
    if (interval && *interval) {
        char *end;
        unsigned long long v = strtoull(interval, &end, 10);
        unsigned shift = 0;
        if (*end == 'k' || *end == 'K')
            shift = 10, end++;
        else if (*end == 'm' || *end == 'M')
            shift = 20, end++;
        if (*end || interval[0] == '-' || v > (SIZE_MAX >> shift)) {
            warn("bad CMALLOC_PROF_INTERVAL (expected bytes, such as 512k)", interval);
            return false;
        }
        prof.interval = (size_t)v << shift;
    }
    const char *sig = getenv("CMALLOC_PROF_SIGNAL");
    if (sig && *sig) {
        int signo = parse_signal(sig);
        if (signo < 0 || prof.mode != MODE_PROFILE) {
            warn(signo < 0 ? "bad CMALLOC_PROF_SIGNAL" : "CMALLOC_PROF_SIGNAL needs profile mode",
                 sig);
            return false;
        }
        pthread_t thread;
        if (pipe2(prof.signal_pipe, O_CLOEXEC) == 0 &&
            pthread_create(&thread, NULL, signal_dumper, NULL) == 0) {
            pthread_detach(thread);
            struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
            sigemptyset(&sa.sa_mask);
            sigaction(signo, &sa, NULL);
        }
    }
    return true;
}

/* Nothing waits for the lock around fork, for the reasons of the core's
 * fork.c. A child that finds it held (by a thread it does not have, or by
 * this one, interrupted in a hook by the signal whose handler forked) has
 * tables that may be halfway through a change: it profiles nothing and
 * reports nothing, and leaves the lock and the tables to that change. */
static void fork_child(void)
{
    if (pthread_mutex_trylock(&prof.lock) == 0)
        pthread_mutex_unlock(&prof.lock);
    else
        __atomic_store_n(&prof.active, false, __ATOMIC_RELAXED);
}

__attribute__((constructor)) static void prof_start(void)
{
    if (!configure())
        return;
    /* Programs may close stderr before exit: report to a copy of it. */
    if (prof.mode == MODE_LEAKS && !prof.output)
        prof.out_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 100);
    uintptr_t anchors[2] = {(uintptr_t)&on_event, (uintptr_t)&cmalloc_hook_install};
    dl_iterate_phdr(note_own_module, anchors);
    prof.stacks.cap = STACKS_MAX;
    prof.stacks.slots = map_zeroed(STACKS_MAX * sizeof(struct stack));
    prof.stack_ids = map_zeroed(STACKS_MAX * sizeof *prof.stack_ids);
    if (!prof.stacks.slots || !prof.stack_ids || !live_grow()) {
        warn("cannot map its tables", strerror(errno));
        return;
    }
    /* Warm up the unwinder before any hook runs, so its one-time set-up
     * happens here rather than inside malloc. */
    uintptr_t frames[MAX_FRAMES];
    capture_stack(frames);
    pthread_atfork(NULL, NULL, fork_child);
    prof.active = true;
    int err = cmalloc_hook_install(on_event, NULL, prof.interval);
    if (err) {
        prof.active = false;
        warn("cannot install its hook", strerror(err));
    }
}

__attribute__((destructor)) static void prof_finish(void)
{
    if (!prof.active)
        return;
    /* Whatever the report allocates is the profiler's own business. */
    cmalloc_hook_remove(on_event, NULL);
    if (prof.mode == MODE_PROFILE) {
        write_profile(prof.output);
        return;
    }
    FILE *out = prof.output ? fopen(prof.output, "w")
                            : fdopen(prof.out_fd >= 0 ? prof.out_fd : dup(STDERR_FILENO), "w");
    if (!out) {
        dprintf(2, "cmalloc-prof: cannot write the leak report: %s\n", strerror(errno));
        return;
    }
    write_leaks(out);
    fclose(out);
}
