/* The one seam to the kernel and to libc: every system call cmalloc makes
 * (memory, futex, clocks, files, signals) and the little it reads from libc
 * (the environment, the auxiliary vector), behind functions that never
 * allocate, leave errno as they found it and need no initialisation.
 * prim/linux.c implements it. */
#ifndef CM_PRIM_H
#define CM_PRIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#pragma GCC visibility push(hidden)

/* Memory. Mappings are private, anonymous and read-write. */
void *cm_prim_map(size_t size);
void cm_prim_unmap(void *p, size_t size);
/* Reserves size bytes at p, inaccessible, if nothing is mapped there. */
bool cm_prim_reserve_at(void *p, size_t size);
void cm_prim_purge(void *p, size_t size);
bool cm_prim_protect(void *p, size_t size, bool accessible);
/* Grows a mapping where it is. */
bool cm_prim_grow_in_place(void *p, size_t old_size, size_t new_size);
/* Moves a mapping onto target (a mapping of new_size bytes it replaces). */
void *cm_prim_move(void *p, size_t old_size, size_t new_size, void *target);
/* The program break: sbrk semantics, (void *)-1 on failure. */
void *cm_prim_sbrk(intptr_t incr);

/* Futexes, private to the process. */
void cm_prim_futex_wait(int *addr, int val);
void cm_prim_futex_wake(int *addr, int count);

/* Clocks: monotonic nanoseconds, and coarse monotonic milliseconds (no
 * system call through the vDSO, resolution of a tick). */
uint64_t cm_prim_now_ns(void);
uint32_t cm_prim_now_ms_coarse(void);

/* Threads. Starts fn(arg) in a detached thread named name (at most 15
 * characters), with every signal blocked; returns whether it started. May
 * call malloc (glibc's pthread_create does): never with a lock held. */
bool cm_prim_thread_start(void *(*fn)(void *), void *arg, const char *name);
void cm_prim_sleep_ms(unsigned ms);

/* Files and processes. */
void cm_prim_write(int fd, const char *buf, size_t len);
/* Turns the calling thread's cancellation off, returning the state to give
 * back to cm_prim_cancel_restore: a report's writes are cancellation
 * points, and a pending request must not cut the report short. */
int cm_prim_cancel_off(void);
void cm_prim_cancel_restore(int state);
/* A close-on-exec copy of fd numbered at least min, or -1. */
int cm_prim_dup_above(int fd, int min);
int cm_prim_getpid(void);

/* Online CPUs, from sysfs, else from the affinity mask; at least 1. */
unsigned cm_prim_online_cpus(void);
/* Two secrets from the kernel's AT_RANDOM bytes. */
void cm_prim_random_seed(uintptr_t out[2]);
/* getenv, read from environ without allocating; NULL before libc has set
 * environ up. */
const char *cm_prim_getenv(const char *name);
bool cm_prim_have_environ(void);

/* Whether the process's symbol name (the first definition in the global
 * scope) is defined by another object than the one holding own, found
 * without allocating. A non-PIE program that takes the function's address
 * makes a stub of its own the symbol's address, which hides where the
 * definition is: that counts as no other. */
bool cm_prim_defined_elsewhere(const char *name, const void *own);

/* Installs handler for sig unless the signal has a handler already;
 * returns whether it did. */
bool cm_prim_signal_install(int sig, void (*handler)(int));

#pragma GCC visibility pop

#endif
