/* The guards: what the ext paths do to every block while hardened mode or
 * Valgrind support is on (CM_FEAT_GUARDS), and hardened mode itself.
 *
 * Each guarded block carries 16 bytes of metadata: the size the program
 * asked for, the block's state, and a canary computed from a secret, the
 * block's address and those two, so that no byte of it can change unseen.
 * A small block keeps it at the end of its size class, a huge block just
 * before the block, in the header page:
 *
 *   small: [ data: n bytes | pad ...... | canary | size, state ]
 *   huge:  [ header ... | canary | size, state ][ data: n | pad ][ guard ]
 *
 * Hardened mode adds:
 * - the pad (up to the trailer, or to the guard page) holds a pattern byte
 *   that is never zero, and the canary has no zero byte either, so even a
 *   one-byte overflow of a string's NUL is seen when the block is freed;
 * - a freed block is filled with the pattern and waits in the quarantine, a
 *   FIFO of at most 1 MiB and 1024 blocks, before the core gets it back.
 *   The pattern is checked when the block leaves the quarantine, and again
 *   when the core hands it out: its trailer then says FREED, and all of it
 *   but the core's 16-byte link and the trailer must still be the pattern;
 * - a second free is seen in the state (quarantined or freed);
 * - huge blocks end at a guard page (the core keeps cm_ext.huge_tail bytes
 *   at the end of their mappings inaccessible) and are unmapped when freed,
 *   their addresses then kept reserved and inaccessible for a while
 *   (free_huge);
 * - a cache refill leaves in random order (shuffle_refill).
 *
 * Under Valgrind, hardened mode stays off: memcheck checks every access
 * itself. The metadata still gives malloc_usable_size the requested size
 * and double frees their state; the quarantine delays reuse as Valgrind's
 * own allocator does, so a use after free is reported as one; and
 * valgrind.c tells memcheck where blocks start and end. */
#include <string.h>

#include "ext.h"

#define META_SIZE 16
#define STATE_SHIFT 60
#define SIZE_MASK (((uint64_t)1 << STATE_SHIFT) - 1)

enum block_state { LIVE = 1, QUARANTINED, FREED };

struct meta {
    uint64_t canary;  /* first, so that the byte after a full block is in it */
    uint64_t word;    /* requested size | state << STATE_SHIFT */
};

#define QUARANTINE_SLOTS 1024
#define QUARANTINE_BYTES ((size_t)1 << 20)
/* Larger blocks would push out too many others: they skip the queue. */
#define QUARANTINE_MAX_BLOCK (QUARANTINE_BYTES / 16)

struct quarantined {
    void *p;
    size_t room;
};

/* Freed huge blocks' reserved address ranges (see free_huge). */
#define HUGE_TOMBSTONES 16

struct reservation {
    void *p;
    size_t size;
};

/* A forked child that finds the lock held takes an empty quarantine
 * instead (the blocks and reservations in the old one are lost to it),
 * leaving the old one to the change under way, if the forking thread was
 * making it. */
struct quarantine {
    cm_lock_t lock;  /* first: see cm_lock_current */
    unsigned head, count;
    size_t bytes;
    struct quarantined slot[QUARANTINE_SLOTS];
    unsigned tomb_head, tomb_count;
    struct reservation tomb[HUGE_TOMBSTONES];
};

static struct quarantine quarantine_first;
static cm_lock_t *quarantine_now = &quarantine_first.lock;

static struct quarantine *quarantine_lock(void)
{
    return (struct quarantine *)cm_lock_current(&quarantine_now);
}

static void quarantine_fork_child(void)
{
    cm_fork_replace_if_held(&quarantine_now, sizeof(struct quarantine));
}

static uint64_t secret;
static unsigned char pattern;  /* fill of pads and freed blocks, never 0 */
/* A page of it, for memcmp: libc's compares many bytes per instruction. */
static unsigned char pattern_page[CM_PAGE_SIZE];

static __thread uint64_t rng_state __attribute__((tls_model("initial-exec")));

/* A block as the guards see it: room is what the core gave (the class size,
 * or the huge block up to its guard page), end where data and pad stop. */
struct block {
    char *p;
    size_t room;
    size_t end;
    struct meta *meta;
    struct cm_block_info info;
};

static struct block block_at(void *p, struct cm_block_info info)
{
    struct block b = {.p = p, .info = info};
    if (info.cls) {
        b.room = cm_classes[info.cls].size;
        b.end = b.room - META_SIZE;
        b.meta = (struct meta *)(b.p + b.end);
    } else {
        b.room = cm_huge_usable(info.segment);
        b.end = b.room;
        b.meta = (struct meta *)(b.p - META_SIZE);
    }
    return b;
}

/* Where a block known to be one lives: the core handed it out, or it was
 * checked when it was given back. Cheaper than cm_locate, which checks. */
static struct cm_block_info known_block(const void *p)
{
    if (!cm_tag_is_heap(cm_segmap_tag((uintptr_t)p)))
        return cm_locate(p);
    struct cm_segment *s = cm_segment_of(p);
    return (struct cm_block_info){s, s->page_cls[cm_page_index(p)]};
}

static uint64_t guard_random(void)
{
    return cm_random_next(&rng_state, secret ^ (uint64_t)(uintptr_t)&rng_state);
}

/* Hardened mode: the blocks of a refill leave the cache in random order, so
 * the address of the next block cannot be told from the last one's. */
static void shuffle_refill(void **blocks, unsigned n)
{
    for (unsigned i = n; i > 1; i--) {
        unsigned j = (unsigned)(guard_random() % i);
        void *t = blocks[i - 1];
        blocks[i - 1] = blocks[j];
        blocks[j] = t;
    }
}

static void forget_run(const struct cm_run *r);
static void quarantined(const struct cm_arena *a, size_t *counts, bool only_try);

/* Decides the guards, once: Valgrind support under memcheck, else hardened
 * mode when asked for. */
void cm_guard_attach(void)
{
    uintptr_t seed[2];
    cm_prim_random_seed(seed);
    secret = seed[0];
    pattern = (unsigned char)(seed[1] % 255 + 1);
    unsigned bits = 0;
    if (cm_valgrind_running()) {
        bits = CM_FEAT_VALGRIND;
        cm_ext.no_thread_cache = true;
    } else if (cm_opt.hardened) {
        bits = CM_FEAT_HARDENED;
        memset(pattern_page, pattern, sizeof pattern_page);
        cm_ext.huge_tail = CM_PAGE_SIZE;
        cm_ext.refill_order = shuffle_refill;
    }
    if (!bits)
        return;
    cm_ext.run_released = forget_run;
    cm_ext.held_blocks = quarantined;
    cm_ext.owns = cm_guard_owns;
    cm_fork_register_child(quarantine_fork_child);
    cm_features_set(bits, true);
}

/* ---- metadata ----
 * Inlined: every malloc+free pair computes a canary three or four times. */

static inline __attribute__((always_inline)) uint64_t canary_of(const void *p, uint64_t word)
{
    uint64_t z = ((uint64_t)(uintptr_t)p ^ secret) + word * 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (z ^ (z >> 31)) | 0x0101010101010101ULL;
}

/* Another thread may read a block's metadata while its owner changes it
 * (check_block_before reads the block before the one freed): the canary is
 * cleared first and written last, so a reader sees either a whole
 * metadata, or a cleared canary beside a valid word, or a canary that
 * changes under it. */
static inline __attribute__((always_inline)) void set_meta(const struct block *b, uint64_t size, enum block_state state)
{
    uint64_t word = size | (uint64_t)state << STATE_SHIFT;
    __atomic_store_n(&b->meta->canary, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&b->meta->word, word, __ATOMIC_RELEASE);
    __atomic_store_n(&b->meta->canary, canary_of(b->p, word), __ATOMIC_RELEASE);
}

/* Whether the metadata is intact; if so, its word. */
static inline __attribute__((always_inline)) bool get_meta(const struct block *b, uint64_t *word)
{
    *word = b->meta->word;
    return b->meta->canary == canary_of(b->p, *word) && (*word & SIZE_MASK) <= b->end;
}

static enum block_state state_of(uint64_t word)
{
    return (enum block_state)(word >> STATE_SHIFT);
}

/* A freed small block's trailer: it binds the mark to the class size. */
static bool is_freed_mark(const struct block *b)
{
    uint64_t word;
    return get_meta(b, &word) && state_of(word) == FREED && (word & SIZE_MASK) == b->end;
}

/* ---- patterns ---- */

/* The offset of the first byte in [from, to) that is not the pattern, or
 * SIZE_MAX. */
static size_t first_mismatch(const char *p, size_t from, size_t to)
{
    for (size_t i = from; i < to; i += sizeof pattern_page) {
        size_t len = to - i < sizeof pattern_page ? to - i : sizeof pattern_page;
        if (memcmp(p + i, pattern_page, len) != 0) {
            while ((unsigned char)p[i] == pattern)
                i++;
            return i;
        }
    }
    return SIZE_MAX;
}

static CM_COLD _Noreturn void write_after_free(const char *fn, const struct block *b, size_t at)
{
    cm_fatal("%s(): write after free detected in %p (offset %zu of a %zu-byte block)", fn,
             (void *)b->p, at, b->room);
}

/* A block whose metadata is damaged: a double free if the core holds it as
 * a free block (the link of a 16-byte block covers its trailer), otherwise
 * an overflow from the block before it (huge) or from the block itself.
 * fn is the function called, or "" where several may have been. */
static CM_COLD _Noreturn void damaged(const char *fn, const struct block *b)
{
    const char *sep = *fn ? "(): " : "";
    if (b->info.cls && ((struct cm_block *)b->p)->free_key == cm_hot.free_key &&
        cm_block_is_free(cm_tcache_get(), b->info.segment, b->p, b->info.cls))
        cm_fatal("%s%sdouble free of %p (block size %u)", fn, sep, (void *)b->p,
                 cm_classes[b->info.cls].size);
    if (!b->info.cls)
        cm_fatal("%s%sheap underflow detected before %p (its header is overwritten)", fn, sep,
                 (void *)b->p);
    cm_fatal("%s%sheap overflow detected after %p (its trailer is overwritten)", fn, sep,
             (void *)b->p);
}

static CM_COLD _Noreturn void underflow(const char *fn, const struct block *b)
{
    cm_fatal("%s(): heap underflow detected before %p (the bytes before it are overwritten)", fn,
             (void *)b->p);
}

/* Whether the metadata of b, a block another thread may own, is whole, or
 * being written by set_meta, or all zero (a block never handed out). */
static bool meta_may_be_intact(const struct block *b)
{
    uint64_t canary = __atomic_load_n(&b->meta->canary, __ATOMIC_ACQUIRE);
    uint64_t word = __atomic_load_n(&b->meta->word, __ATOMIC_ACQUIRE);
    if (__atomic_load_n(&b->meta->canary, __ATOMIC_ACQUIRE) != canary)
        return true;
    if (canary == 0) {
        enum block_state state = state_of(word);
        return word == 0 || (state >= LIVE && state <= FREED && (word & SIZE_MASK) <= b->end);
    }
    return canary == canary_of(b->p, word) && (word & SIZE_MASK) <= b->end;
}

/* Whether the n bytes before p are zero. */
static bool zero_before(const char *p, size_t n)
{
    for (size_t i = 1; i <= n; i++) {
        if (p[-(ptrdiff_t)i])
            return false;
    }
    return true;
}

/* Whether what lies just before b, the first block of its run, is as it
 * should be: the trailer of the last block of the run before, or the
 * slack after that block, or a free run, or the unused end of the segment
 * header, all zero but a trailer. */
static bool run_start_intact(const struct block *b)
{
    uintptr_t addr = (uintptr_t)b->p;
    struct cm_block_info info = b->info;
    info.cls = info.segment->page_cls[cm_page_index((void *)(addr - 1))];
    if (!info.cls) {
        if ((addr & CM_SEG_MASK) < sizeof(struct cm_segment) + META_SIZE)
            return true;
        return zero_before(b->p, META_SIZE);
    }
    size_t size = cm_classes[info.cls].size;
    size_t slack = (((addr - 1) & cm_hot.run_mask[info.cls]) + 1) % size;
    if (slack)
        return zero_before(b->p, slack < META_SIZE ? slack : META_SIZE);
    struct block before = block_at(b->p - size, info);
    return meta_may_be_intact(&before);
}

/* Hardened mode: an underflow from a small block lands in the trailer of
 * the block before it, which must be intact metadata, or all zero for a
 * block never handed out; or, for the first block of a run, in what lies
 * before the run (run_start_intact). Heap memory outside the blocks handed
 * out is zero: fresh from the kernel, and forget_run clears a run's blocks
 * when the run is given back. */
static void check_block_before(const char *fn, const struct block *b)
{
    bool intact;
    if (((uintptr_t)b->p & cm_hot.run_mask[b->info.cls]) == 0) {
        /* The run before may be given back, cleared and carved again
         * meanwhile: its arena's lock keeps it as it is. */
        struct cm_arena *a = b->info.segment->arena;
        cm_lock(&a->lock);
        intact = run_start_intact(b);
        cm_unlock(&a->lock);
    } else {
        struct block before = block_at(b->p - b->room, b->info);
        intact = meta_may_be_intact(&before);
    }
    if (!intact)
        underflow(fn, b);
}

/* Hardened mode: the requested size of a block the program gives back,
 * which must be live, with its metadata and pad intact, as must be the
 * metadata just before it. */
static size_t checked_size(const char *fn, const struct block *b)
{
    uint64_t word;
    if (!get_meta(b, &word))
        damaged(fn, b);
    if (b->info.cls)
        check_block_before(fn, b);
    if (state_of(word) != LIVE)
        cm_fatal("%s(): double free of %p (block size %zu)", fn, (void *)b->p,
                 (size_t)(word & SIZE_MASK));
    size_t n = word & SIZE_MASK;
    /* A pad may be large (the slack of a big class, the reserve of a huge
     * block grown by realloc): an overflow reaches its first page first. */
    size_t pad_end = b->end - n > CM_PAGE_SIZE ? n + CM_PAGE_SIZE : b->end;
    if (first_mismatch(b->p, n, pad_end) != SIZE_MAX)
        cm_fatal("%s(): heap overflow detected after %p (block size %zu)", fn, (void *)b->p, n);
    return n;
}

/* ---- the quarantine ---- */

/* Hardened mode: a quarantined block must be as free left it. */
static void check_quarantined(const char *fn, const struct block *b)
{
    uint64_t word;
    if (!get_meta(b, &word) || state_of(word) != QUARANTINED)
        write_after_free(fn, b, b->end);
    size_t at = first_mismatch(b->p, 0, b->end);
    if (at != SIZE_MAX)
        write_after_free(fn, b, at);
}

static void release(const struct quarantined *q, unsigned ext)
{
    struct block b = block_at(q->p, known_block(q->p));
    if (ext & CM_FEAT_HARDENED) {
        check_quarantined("free", &b);
        set_meta(&b, b.end, FREED);
    } else {
        cm_valgrind_quiet(true);
        set_meta(&b, b.end, FREED);
        cm_valgrind_quiet(false);
        cm_valgrind_defined(b.p, sizeof(struct cm_block));
    }
    cm_core_free(b.p);
}

/* Queues a freed block, releasing the oldest ones for room. */
static void quarantine_push(void *p, size_t room, unsigned ext)
{
    bool queued = false;
    while (!queued) {
        struct quarantined oldest = {NULL, 0};
        struct quarantine *qu = quarantine_lock();
        if (qu->count == QUARANTINE_SLOTS || qu->bytes + room > QUARANTINE_BYTES) {
            struct quarantined *q = &qu->slot[qu->head];
            oldest = *q;
            /* A stale pointer here would keep a leaked block reachable for
             * memcheck once the core has handed it out again. */
            q->p = NULL;
            qu->head = (qu->head + 1) % QUARANTINE_SLOTS;
            qu->count--;
            qu->bytes -= oldest.room;
        }
        if (qu->count < QUARANTINE_SLOTS && qu->bytes + room <= QUARANTINE_BYTES) {
            struct quarantined *q = &qu->slot[(qu->head + qu->count) % QUARANTINE_SLOTS];
            q->p = p;
            q->room = room;
            qu->count++;
            qu->bytes += room;
            queued = true;
        }
        cm_unlock(&qu->lock);
        if (oldest.p)
            release(&oldest, ext);
    }
}

/* Hardened mode: the blocks still in the quarantine when the program
 * exits are checked too, or a write after free into one of the last
 * blocks freed would go unseen. */
__attribute__((destructor)) static void check_quarantine_at_exit(void)
{
    if (!(cm_features_now() & CM_FEAT_HARDENED))
        return;
    struct quarantine *qu = quarantine_lock();
    for (unsigned i = 0; i < qu->count; i++) {
        void *p = qu->slot[(qu->head + i) % QUARANTINE_SLOTS].p;
        struct block b = block_at(p, known_block(p));
        check_quarantined("exit", &b);
    }
    cm_unlock(&qu->lock);
}

/* Hardened mode: the addresses of a freed huge block stay reserved for a
 * while, inaccessible, so that a dangling pointer faults and the next huge
 * block cannot be mapped at the same address. The block itself is unmapped
 * at once (the statistics see it freed); a reservation of the same range,
 * address space only, takes its place unless another mapping got there
 * first. The oldest of HUGE_TOMBSTONES reservations is dropped for a new
 * one, and all of them when an allocation runs out of address space
 * (cm_guard_drop_reservations). */
static void free_huge(const struct block *b)
{
    void *base = b->info.segment;
    size_t size = b->info.segment->map_size;
    cm_core_free(b->p);
    if (!cm_prim_reserve_at(base, size))
        return;
    struct reservation oldest = {NULL, 0};
    struct quarantine *qu = quarantine_lock();
    if (qu->tomb_count == HUGE_TOMBSTONES) {
        oldest = qu->tomb[qu->tomb_head];
        qu->tomb_head = (qu->tomb_head + 1) % HUGE_TOMBSTONES;
        qu->tomb_count--;
    }
    qu->tomb[(qu->tomb_head + qu->tomb_count++) % HUGE_TOMBSTONES] = (struct reservation){base, size};
    cm_unlock(&qu->lock);
    if (oldest.p)
        cm_prim_unmap(oldest.p, oldest.size);
}

bool cm_guard_drop_reservations(void)
{
    struct reservation dropped[HUGE_TOMBSTONES];
    struct quarantine *qu = quarantine_lock();
    unsigned n = qu->tomb_count;
    for (unsigned i = 0; i < n; i++)
        dropped[i] = qu->tomb[(qu->tomb_head + i) % HUGE_TOMBSTONES];
    qu->tomb_head = qu->tomb_count = 0;
    cm_unlock(&qu->lock);
    for (unsigned i = 0; i < n; i++)
        cm_prim_unmap(dropped[i].p, dropped[i].size);
    return n > 0;
}

/* ---- the guard interface ---- */

size_t cm_guard_request(size_t n)
{
    cm_ensure_init();
    if (!(cm_features_now() & CM_FEAT_GUARDS))
        return n;
    /* A block that cannot have a trailer within the largest class is made
     * huge: its metadata then goes before it. */
    if (n > CM_MAX_CLASS_SIZE - META_SIZE)
        return n > CM_MAX_CLASS_SIZE ? n : CM_MAX_CLASS_SIZE + 1;
    return n + META_SIZE;
}

/* Hardened mode: a block handed out again must still hold the pattern. */
static void hardened_alloc(const struct block *b, size_t n)
{
    if (b->info.cls && is_freed_mark(b)) {
        size_t at = first_mismatch(b->p, sizeof(struct cm_block), b->end);
        if (at != SIZE_MAX)
            write_after_free("malloc", b, at);
    }
    set_meta(b, n, LIVE);
    memset(b->p + n, pattern, b->end - n);
}

/* Under Valgrind: only the n bytes asked for are addressable. */
static void valgrind_alloc(const struct block *b, size_t n, bool zero)
{
    cm_valgrind_quiet(true);
    set_meta(b, n, LIVE);
    cm_valgrind_quiet(false);
    cm_valgrind_alloc(b->p, n, zero);
    cm_valgrind_noaccess(b->p + n, b->end - n);
    cm_valgrind_noaccess(b->meta, META_SIZE);
}

void *cm_guard_after_alloc(void *p, size_t n, bool zero)
{
    unsigned ext = cm_features_now();
    struct block b = block_at(p, known_block(p));
    if (ext & CM_FEAT_HARDENED)
        hardened_alloc(&b, n);
    else if (ext & CM_FEAT_VALGRIND)
        valgrind_alloc(&b, n, zero);
    /* A fresh huge mapping is zero already. */
    if (zero && (b.info.cls || !b.info.segment->zeroed))
        memset(p, 0, n);
    return p;
}

/* Hardened mode: checks a block being freed and fills it with the pattern.
 * A huge block is unmapped at once, and needs no fill. */
static void hardened_free(const struct block *b, bool queue)
{
    size_t n = checked_size("free", b);
    if (!b->info.cls)
        return;
    memset(b->p, pattern, n);
    if (queue)
        set_meta(b, n, QUARANTINED);
    else
        set_meta(b, b->end, FREED);
}

/* Under Valgrind: tells memcheck, which reports the free of a block that
 * is not live (a double free); such a block is left alone. */
static bool valgrind_free(const struct block *b, bool queue)
{
    uint64_t word;
    cm_valgrind_quiet(true);
    bool live = get_meta(b, &word) && state_of(word) == LIVE;
    if (live)
        set_meta(b, b->end, queue ? QUARANTINED : FREED);
    cm_valgrind_quiet(false);
    cm_valgrind_free(b->p);
    /* The core keeps its link in the first bytes of a free block. */
    if (live && b->info.cls && !queue)
        cm_valgrind_defined(b->p, sizeof(struct cm_block));
    return live;
}

bool cm_guard_before_free(void *p)
{
    cm_ensure_init();
    unsigned ext = cm_features_now();
    if (!(ext & CM_FEAT_GUARDS))
        return true;
    struct cm_block_info info = cm_locate(p);
    if (!info.segment) {
        if (!(ext & CM_FEAT_VALGRIND))
            cm_invalid_pointer("free", p);
        cm_valgrind_free(p);
        return false;
    }
    struct block b = block_at(p, info);
    bool queue = info.cls && b.room <= QUARANTINE_MAX_BLOCK;
    if (ext & CM_FEAT_VALGRIND) {
        if (!valgrind_free(&b, queue))
            return false;
    } else {
        hardened_free(&b, queue);
    }
    if (queue) {
        quarantine_push(p, b.room, ext);
        return false;
    }
    if (!info.cls && (ext & CM_FEAT_HARDENED)) {
        free_huge(&b);
        return false;
    }
    return true;
}

/* Hardened mode resizes a block in place while its size class still fits
 * (as the core does), and a huge block by moving its pages: a buffer grown
 * step by step must not be copied at every step. NULL: ext.c is to move
 * the block, as it always does under Valgrind (whose own realloc always
 * moves). */
void *cm_guard_realloc(void *p, size_t n)
{
    if (!(cm_features_now() & CM_FEAT_HARDENED))
        return NULL;
    struct block b = block_at(p, known_block(p));
    size_t old = checked_size("realloc", &b);
    size_t request = cm_guard_request(n);
    void *q = p;
    if (b.info.cls) {
        if (request > CM_MAX_CLASS_SIZE || cm_size_class(request) != b.info.cls)
            return NULL;
    } else {
        if (!cm_maps_own(request))
            return NULL;
        q = cm_huge_realloc(b.info.segment, request);
        if (!q)
            return NULL;
    }
    /* The bytes given up, and the pages the block gained, become pad. */
    struct block moved = block_at(q, known_block(q));
    if (n < old)
        memset(moved.p + n, pattern, (old < moved.end ? old : moved.end) - n);
    if (moved.end > b.end)
        memset(moved.p + b.end, pattern, moved.end - b.end);
    set_meta(&moved, n, LIVE);
    return q;
}

size_t cm_guard_usable(void *p, size_t core_usable)
{
    unsigned ext = cm_features_now();
    if (!(ext & CM_FEAT_GUARDS))
        return core_usable;
    struct block b = block_at(p, known_block(p));
    uint64_t word;
    bool intact;
    if (ext & CM_FEAT_VALGRIND) {
        cm_valgrind_quiet(true);
        intact = get_meta(&b, &word);
        cm_valgrind_quiet(false);
    } else if (!(intact = get_meta(&b, &word))) {
        damaged("", &b);
    }
    return intact ? word & SIZE_MASK : core_usable;
}

/* For cmalloc_owns: whether p, the start of a block, is live rather than
 * waiting in the quarantine or free. */
int cm_guard_owns(const void *p)
{
    struct block b = block_at((void *)p, known_block(p));
    bool valgrind = cm_features_now() & CM_FEAT_VALGRIND;
    uint64_t word;
    if (valgrind)
        cm_valgrind_quiet(true);
    bool live = get_meta(&b, &word) && state_of(word) == LIVE;
    if (valgrind)
        cm_valgrind_quiet(false);
    return live;
}

/* For the statistics: adds to counts[cls] the blocks of arena a that wait
 * in the quarantine, which the program has freed. Counts nothing if
 * only_try is set and the lock is busy. */
static void quarantined(const struct cm_arena *a, size_t *counts, bool only_try)
{
    struct quarantine *qu;
    if (!only_try)
        qu = quarantine_lock();
    else if (!cm_trylock(&(qu = (struct quarantine *)__atomic_load_n(&quarantine_now,
                                                                   __ATOMIC_ACQUIRE))->lock))
        return;
    for (unsigned i = 0; i < qu->count; i++) {
        const void *p = qu->slot[(qu->head + i) % QUARANTINE_SLOTS].p;
        const struct cm_segment *s = cm_segment_of(p);
        if (s->arena == a)
            counts[s->page_cls[cm_page_index(p)]]++;
    }
    cm_unlock(&qu->lock);
}

/* A run given back to its arena may come back as blocks of another class,
 * or of this one after other blocks were written there: no freed mark may
 * survive to make a fresh block look like a freed one, no old byte may sit
 * where a new block's trailer will be (check_block_before takes zero for a
 * block never handed out), and under Valgrind the core may write its links
 * anywhere in it. */
static void forget_run(const struct cm_run *r)
{
    char *base = cm_run_base(r);
    if (cm_features_now() & CM_FEAT_VALGRIND) {
        cm_valgrind_undefined(base, CM_PAGE_SIZE << r->order);
        return;
    }
    memset(base, 0, (size_t)r->carved * cm_classes[r->cls].size);
}
