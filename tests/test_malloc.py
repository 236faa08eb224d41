"""The web server's allocator setting (lib.malloc, set by gunicorn's post_worker_init), in a
process of its own: threads working at once share at most two arenas, and a large block freed
goes back to the system however large the one freed before it was."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from lib.malloc import ARENAS

PROBE = textwrap.dedent(
    """
    import ctypes, sys, tempfile, threading, zlib

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = MallInfo2
    libc.fopen.restype = ctypes.c_void_p
    if sys.argv[1] == "tuned":
        from tmsdash.gunicorn import post_worker_init
        post_worker_init(None)

    def squeeze():
        # zlib works without the GIL, so the threads' allocations meet in the allocator.
        for _ in range(50):
            zlib.compress(bytes(300_000) + b"x" * 1000, 6)

    threads = [threading.Thread(target=squeeze) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with tempfile.NamedTemporaryFile() as report:
        stream = ctypes.c_void_p(libc.fopen(report.name.encode(), b"w"))
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        heaps = open(report.name).read().count("<heap nr=")

    big = bytes(4_000_000)
    del big
    before = libc.mallinfo2().hblks
    block = bytes(300_000)
    mapped = libc.mallinfo2().hblks - before
    print(heaps, mapped)
    """
)


def probe(mode: str) -> tuple[int, int]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    heaps, mapped = done.stdout.split()
    return int(heaps), int(mapped)


def test_a_web_worker_keeps_few_arenas_and_maps_large_blocks_on_their_own():
    heaps, mapped = probe("tuned")
    assert heaps <= ARENAS
    assert mapped == 1


def test_without_it_threads_take_arenas_of_their_own_and_large_blocks_stay_in_them():
    # What the setting is for: the same work in a process left as it starts.
    heaps, mapped = probe("plain")
    assert heaps > ARENAS
    assert mapped == 0
