r"""How long `manage.py backup` takes on SQLite, and what it costs a writer meanwhile.

    .venv/bin/python bench/backup.py [--megabytes 200] [--pages 256]

Builds a throwaway WAL database of the given size in a temporary directory (a table of
4 KiB rows), then copies it with ops.backup.sqlite_backup while a thread commits one small
row at a time into it, as the dashboard's writers do. Prints the backup's time and rate, and
the writer's commit latency (median, 99th percentile, longest) during the backup against
the same writer alone.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ops.backup import PAGES_PER_STEP, sqlite_backup

ROW = 4096


def build(path: Path, megabytes: int) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, body BLOB)")
        db.execute("CREATE TABLE writes (id INTEGER PRIMARY KEY, at REAL)")
        rows = megabytes * 1024 * 1024 // ROW
        for start in range(0, rows, 10_000):
            count = min(10_000, rows - start)
            db.executemany(
                "INSERT INTO filler (body) VALUES (?)", ([b"x" * ROW] for _ in range(count))
            )
            db.commit()


def write_until(path: Path, stop: threading.Event) -> list[float]:
    """Commit one row at a time until `stop`; each commit's seconds."""
    latencies = []
    with contextlib.closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as db:
        db.execute("PRAGMA synchronous=NORMAL")
        while not stop.is_set():
            started = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO writes (at) VALUES (?)", (time.time(),))
            db.execute("COMMIT")
            latencies.append(time.perf_counter() - started)
    return latencies


def measure(path: Path, seconds: float | None, backup=None) -> tuple[list[float], float]:
    stop = threading.Event()
    result: list[list[float]] = []
    writer = threading.Thread(target=lambda: result.append(write_until(path, stop)))
    writer.start()
    started = time.perf_counter()
    if backup:
        backup()
    else:
        time.sleep(seconds)
    elapsed = time.perf_counter() - started
    stop.set()
    writer.join()
    return result[0], elapsed


def describe(name: str, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    return (
        f"{name}: {len(ordered)} commits, median {statistics.median(ordered) * 1000:.2f} ms, "
        f"p99 {p99 * 1000:.2f} ms, longest {ordered[-1] * 1000:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--pages", type=int, default=PAGES_PER_STEP)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        source = Path(directory) / "db.sqlite3"
        build(source, arguments.megabytes)
        copy = Path(directory) / "copy.sqlite3"

        def backup() -> None:
            done = sqlite_backup(source=source, to=copy, force=True, pages=arguments.pages)
            rate = done.size / 1_000_000 / done.seconds
            print(
                f"backup: {done.size / 1_000_000:.0f} MB in {done.seconds:.2f} s ({rate:.0f} MB/s)"
            )

        during, elapsed = measure(source, None, backup)
        alone, _ = measure(source, elapsed)
        print(describe("writer during the backup", during))
        print(describe("writer alone", alone))


if __name__ == "__main__":
    main()
