#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_malloc (tests/fuzz/corpus) and the
hand-made regression inputs (tests/fuzz/regressions).

The seeds are programs in the input format of fuzz_malloc.c; each one
exercises one area (class boundaries, realloc across classes, the memalign
family, cross-thread frees, huge blocks...) so that fuzzing starts from
inputs that already reach it.  Run it again after changing the input
format:  python3 tests/fuzz/make_seeds.py
"""
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MIB = 1 << 20

# Opcodes (the opcode byte modulo 16, see op_of[] in fuzz_malloc.c).
MALLOC, CALLOC, REALLOC, REALLOC_NEAR, FREE = 0, 2, 3, 4, 5
POSIX_MEMALIGN, MEMALIGN, ALIGNED_ALLOC, USABLE, SWITCH = 7, 8, 9, 10, 11
VERIFY, EDGE, RESPAWN, TUNE = 12, 13, 14, 15

# Boundaries in the order LLVMFuzzerInitialize() lists them.
BOUNDARIES = [16 * i for i in range(1, 9)] + [
    (1 << k) + j * (1 << (k - 2)) for k in range(7, 20) for j in range(1, 5)]


def size(n):
    """The shortest encoding of request size n (see get_size())."""
    if n < 32:
        return bytes([n << 3])
    if n <= 128:
        return bytes([1, n - 1])
    if n <= 129 + 3967:
        return bytes([2]) + struct.pack('<H', n - 129)
    if n < 65536:
        return bytes([4]) + struct.pack('<H', n)
    if n <= MIB:
        return bytes([5]) + struct.pack('<I', n)
    return bytes([0xff]) + struct.pack('<I', n - MIB - 1)


def near_boundary(index, delta):
    return bytes([3, index, delta + 16])


def malloc(slot, n):
    return bytes([MALLOC, slot]) + size(n)


def calloc(slot, count, n):
    return bytes([CALLOC, count - 1, slot]) + size(n)


def realloc(slot, n):
    return bytes([REALLOC, slot]) + size(n)


def realloc_near(slot, delta):
    return bytes([REALLOC_NEAR, delta + 32, slot])


def free(slot):
    return bytes([FREE, slot])


def posix_memalign(slot, shift, n):
    """alignment sizeof(void *) << shift"""
    return bytes([POSIX_MEMALIGN, slot, shift]) + size(n)


def memalign(slot, shift, n, odd=False):
    """alignment 1 << shift, plus 24 (not a power of two) when odd"""
    return bytes([MEMALIGN, shift | (0x80 if odd else 0), slot]) + size(n)


def aligned_alloc(slot, shift, n):
    return bytes([ALIGNED_ALLOC, slot, shift]) + size(n)


def usable(slot):
    return bytes([USABLE, slot])


def switch(thread):
    return bytes([SWITCH, thread])


def verify():
    return bytes([VERIFY])


def edge(slot, kind, extra=0):
    return bytes([EDGE, slot, kind, extra])


def respawn(worker):
    return bytes([RESPAWN, worker - 1])


def mmap_threshold(n):
    return bytes([TUNE, 1]) + struct.pack('<I', n - 65536)


def trim_threshold(n):
    return bytes([TUNE, 2]) + struct.pack('<I', n)


def trim(pad=0):
    return bytes([TUNE, 0, pad])


def random_program(seed, length):
    rng = random.Random(seed)
    out = b''
    while len(out) < length:
        slot = rng.randrange(24)
        r = rng.random()
        n = rng.choice([rng.randrange(0, 129), rng.randrange(129, 4097),
                        rng.randrange(4097, 70000), rng.randrange(70000, MIB + 1),
                        rng.choice(BOUNDARIES) + rng.randrange(-2, 3)])
        if r < 0.3:
            out += malloc(slot, n)
        elif r < 0.4:
            out += calloc(slot, rng.randrange(1, 5), n // 4)
        elif r < 0.55:
            out += realloc(slot, n)
        elif r < 0.6:
            out += realloc_near(slot, rng.randrange(-32, 33))
        elif r < 0.75:
            out += free(slot)
        elif r < 0.8:
            out += memalign(slot, rng.randrange(4, 16), n, rng.random() < 0.3)
        elif r < 0.85:
            out += posix_memalign(slot, rng.randrange(0, 14), n)
        elif r < 0.9:
            out += switch(rng.randrange(4))
        elif r < 0.93:
            out += usable(slot)
        elif r < 0.96:
            out += verify()
        else:
            out += aligned_alloc(slot, rng.randrange(0, 14), n)
    return out


def seeds():
    s = {}
    s['tiny'] = b''.join(malloc(i, i) for i in range(32)) + verify() + \
        b''.join(free(i) for i in range(0, 32, 2)) + \
        b''.join(malloc(i, 31 - i) for i in range(0, 32, 2))
    s['boundaries'] = b''.join(
        bytes([MALLOC, i % 64]) + near_boundary(i, d)
        for i in range(len(BOUNDARIES)) for d in (-1, 0, 1)) + verify()
    s['realloc-across-classes'] = malloc(0, 1) + b''.join(
        realloc(0, n) for n in (100, 1000, 5000, 70000, 600000, MIB, MIB + 1,
                                3 * MIB, MIB + 4096, 200000, 48, 0, 17))
    s['realloc-near'] = b''.join(
        malloc(i, n) + usable(i) + realloc_near(i, d)
        for i, (n, d) in enumerate([(16, 1), (128, 0), (160, -1), (1024, 32),
                                    (4096, -32), (65536, 1), (MIB, 1), (MIB - 16, 16)]))
    s['memalign'] = b''.join(
        memalign(i, shift, n, odd=(i % 3 == 0))
        for i, (shift, n) in enumerate([(5, 1), (6, 100), (12, 5000), (13, 70000),
                                        (16, 100), (20, 10), (21, MIB + 10), (22, 3)]))
    s['posix-memalign'] = b''.join(
        posix_memalign(i, shift, n)
        for i, (shift, n) in enumerate([(0, 0), (1, 24), (3, 1000), (9, 4096),
                                        (12, 300000), (17, 2 * MIB), (19, 1)]))
    s['aligned-alloc'] = b''.join(
        aligned_alloc(i, shift, n)
        for i, (shift, n) in enumerate([(0, 1), (4, 16), (8, 256), (12, 4096),
                                        (15, 32768), (20, MIB), (22, 5 * MIB)]))
    s['calloc'] = b''.join(
        calloc(i, c, n) for i, (c, n) in enumerate([(1, 0), (4, 1), (2, 100), (3, 5000),
                                                    (1, 300000), (2, MIB // 2), (1, 2 * MIB)]))
    s['cross-thread'] = b''.join(
        switch(t) + malloc(t * 8 + i, 40 * (i + 1) * (t + 1)) for t in range(4) for i in range(8)) + \
        b''.join(switch((t + 1) % 4) + free(t * 8 + i) + realloc(t * 8 + i + 1, 700)
                 for t in range(4) for i in range(0, 8, 2)) + verify()
    s['respawn'] = switch(1) + b''.join(malloc(i, 24 * (i + 1)) for i in range(16)) + \
        switch(0) + respawn(1) + b''.join(free(i) for i in range(0, 16, 2)) + \
        switch(2) + b''.join(malloc(i, 33) for i in range(0, 16, 2)) + respawn(2) + verify()
    s['huge'] = malloc(0, 2 * MIB) + switch(1) + realloc(0, 8 * MIB - 1) + \
        calloc(1, 1, 3 * MIB) + switch(2) + realloc(1, MIB + 1) + free(0) + \
        malloc(0, 4 * MIB) + switch(0) + realloc(0, 100) + free(1) + verify()
    s['tune'] = mmap_threshold(128 * 1024) + malloc(0, 200000) + malloc(1, 100000) + \
        realloc(0, 600000) + memalign(2, 14, 300000) + trim_threshold(0) + free(0) + \
        trim() + mmap_threshold(2 * MIB) + malloc(3, 1500000) + free(3) + trim(1)
    s['edge'] = malloc(0, 100) + edge(0, 0, 3) + edge(0, 1, 7) + edge(0, 2, 1) + \
        edge(0, 3, 1) + edge(0, 4) + verify()
    for i in range(4):
        s['random-%d' % i] = random_program(i, 400)
    return s


def regressions():
    # a block freed by a worker whose thread then exits, while another
    # worker resizes its neighbours between the large classes and huge
    return {
        'thread-exit-with-huge-realloc':
            switch(1) + b''.join(malloc(i, 900000 + 1000 * i) for i in range(4)) +
            switch(2) + realloc(0, MIB + 1) + realloc(1, 2 * MIB) + free(2) +
            switch(0) + respawn(1) + respawn(2) + switch(3) + realloc(0, 70000) +
            realloc(1, 1) + verify(),
    }


def write(directory, files):
    os.makedirs(directory, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(directory, name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    write(os.path.join(HERE, 'corpus'), seeds())
    write(os.path.join(HERE, 'regressions'), regressions())
