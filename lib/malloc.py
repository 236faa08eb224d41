"""The C allocator of a long-lived threaded process (a gunicorn worker), set so that memory a
large request took goes back: glibc gives each new thread an arena of its own (up to eight per
core), each keeping what it once held, and raises its threshold for returning large blocks to
the system after the first one is freed. With a few arenas and a fixed threshold, a worker that
served 100,000 customer IDs comes back near its size before (docs/performance.md)."""

from __future__ import annotations

import ctypes

# mallopt's parameters (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENAS = 2
# Blocks from this size on are mapped on their own and unmapped when freed.
MMAP_THRESHOLD = 128 * 1024


def malloc_tune() -> bool:
    """Set the process's allocator; call it before the threads start. False where the C
    library is not glibc (it has no mallopt) or refused a setting."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(M_ARENA_MAX, ARENAS)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
