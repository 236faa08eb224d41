"""Measures the cluster client against the fake cluster on loopback.

Run: .venv/bin/python bench/upstream_calls.py [--calls 300]

Prints the client's own cost per call (sequential and 4 at once), how closely the overall
deadline is kept against a trickling body, and the cost of refusing a body over 1 MiB.
Bounded: a few seconds on a small machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tmsdash.settings")
os.environ.setdefault("DEBUG", "true")

import django

django.setup()

from devtools.fake_cluster import FakeCluster  # noqa: E402
from jobs.upstream import call_set_action  # noqa: E402

BENCH_TOKEN = "bench-token"  # noqa: S105 (the fake accepts any token but bad-token)


def one_call(url: str, cids: list[str], timeout: float = 5) -> tuple[float, bool]:
    started = time.perf_counter()
    result = call_set_action(
        base_url=url,
        action_path="/api/set_action",
        job_id="bench",
        action=1,
        action_name="Trans-Begin",
        cids=cids,
        token=BENCH_TOKEN,
        timeout_seconds=timeout,
        verify_tls=True,
    )
    return (time.perf_counter() - started) * 1000, result.success


def describe(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    print(f"{name}: median {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms, n={len(ordered)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    calls = parser.parse_args().calls
    for name in ("jobs", "devtools"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with FakeCluster(slow_seconds=3) as fake:
        one_call(fake.url, ["C1"])  # warm-up

        timings = [one_call(fake.url, ["C1", "C2"])[0] for _ in range(calls)]
        describe("sequential call, 2 CIDs", timings)

        cids = [f"C{i}" for i in range(500)]
        timings = [one_call(fake.url, cids)[0] for _ in range(max(calls // 5, 10))]
        describe("sequential call, 500 CIDs", timings)

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:
            outcomes = list(pool.map(lambda _: one_call(fake.url, ["C1"]), range(calls)))
        elapsed = time.perf_counter() - started
        if not all(ok for _, ok in outcomes):
            raise SystemExit("a concurrent call failed")
        print(f"4 concurrent callers: {calls / elapsed:.0f} calls/s")

        overshoot = [one_call(fake.url, ["TRICKLE1"], timeout=1)[0] - 1000 for _ in range(5)]
        print(
            "trickling body, 1 s timeout: call ends "
            f"{min(overshoot):.0f} to {max(overshoot):.0f} ms after the deadline (whole body: 3 s)"
        )

        timings = [one_call(fake.url, ["HUGE1"])[0] for _ in range(20)]
        describe("body over 1 MiB refused", timings)


if __name__ == "__main__":
    main()
