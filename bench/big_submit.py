r"""100,000 customers submitted from the web form, while others submit one customer at a time.

    .venv/bin/python bench/big_submit.py [--customers 100000] [--others 4]
    createdb -h 127.0.0.1 -U postgres tms_bench_big
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_bench_big \
        .venv/bin/python bench/big_submit.py

On the production server as `make run` starts it (gunicorn, DEBUG off), an operator uploads a
CSV file of --customers IDs, then (another submission) types as many: each time the review
(the form's POST), the confirmation (its POST, answered by a redirect to the batch) and the
batch's page are timed. Then --others API clients each submit one new customer after another
while the operator uploads a third such file; the script reports how long they waited while
it was in hand. The
server's memory (gunicorn's master and workers, summed) is sampled every 20 ms. Jobs are
queued, not run.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from scratch import scratch_django
from webserver import (
    CLUSTER_TOKEN,
    SERVER_ENV,
    bench_cluster,
    confirm_fields,
    gunicorn,
    hidden,
    operators,
    rss_mb,
    signed_in,
    worker_pids,
)

scratch_django("big", **SERVER_ENV)


class Memory(threading.Thread):
    """The server's summed resident memory, sampled until stopped: its peak."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids, self.peak, self.stopping = pids, 0.0, threading.Event()
        self.peaks = dict.fromkeys(pids, 0.0)

    def run(self) -> None:
        while not self.stopping.wait(0.02):
            now = {pid: rss_mb(pid) for pid in self.pids}
            self.peak = max(self.peak, sum(now.values()))
            self.peaks = {pid: max(self.peaks[pid], now[pid]) for pid in self.pids}

    def now(self) -> float:
        return sum(rss_mb(pid) for pid in self.pids)


def small_submitter(base, name, secret, stopping, waits) -> None:
    """Submit one new customer after another until stopped: (start, seconds, status) each."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {secret}"
    n = 0
    while not stopping.is_set():
        n += 1
        started = time.perf_counter()
        answer = session.post(
            f"{base}/api/v1/set-actions",
            json={
                "action": "T-Enable",
                "cluster": "bench",
                "cids": [f"{name}-{n}"],
                "cluster_token": CLUSTER_TOKEN,
            },
            headers={"Idempotency-Key": f"{name}-{n}"},
        )
        waits.append((started, time.perf_counter() - started, answer.status_code))
        if answer.status_code != 201 and len([w for w in waits if w[2] != 201]) == 1:
            print(f"  {name}, first error: {answer.status_code} {answer.text[:300]}")


def big_submit(base: str, username: str, cids: list[str], csv: bool) -> dict[str, float]:
    session = signed_in(base, username)
    page = session.get(f"{base}/")
    fields = {
        "csrfmiddlewaretoken": hidden(page, "csrfmiddlewaretoken"),
        "idempotency_key": hidden(page, "idempotency_key"),
        "action": "1",
        "cluster": bench_cluster(page),
        "token": CLUSTER_TOKEN,
    }
    started = time.perf_counter()
    if csv:
        upload = ("cid\n" + "\n".join(cids) + "\n").encode()
        review = session.post(
            f"{base}/", data=fields, files={"csv_file": ("customers.csv", upload, "text/csv")}
        )
    else:
        review = session.post(f"{base}/", data={**fields, "cids": "\n".join(cids)})
    reviewed = time.perf_counter()
    done = session.post(f"{base}/", data=confirm_fields(review), allow_redirects=False)
    confirmed = time.perf_counter()
    if done.status_code != 302:
        raise SystemExit(f"the confirmation was answered {done.status_code}")
    batch = session.get(f"{base}{done.headers['Location']}")
    shown = time.perf_counter()
    if batch.status_code != 200:
        raise SystemExit(f"the batch page was answered {batch.status_code}")
    return {
        "started": started,
        "review": reviewed - started,
        "confirm": confirmed - reviewed,
        "batch page": shown - confirmed,
        "ended": shown,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--others", type=int, default=4)
    args = parser.parse_args()
    accounts = operators(["bench-big", *(f"bench-other{n}" for n in range(args.others))])
    from django.db import connection

    print(f"engine: {connection.vendor}, {args.customers:,} customers, {args.others} others")
    with gunicorn() as (base, server):
        signed_in(base, "bench-big").get(f"{base}/")  # each worker warmed by a request or two
        memory = Memory(worker_pids(server))
        print(
            f"server memory before: {memory.now():.0f} MB; each: "
            + ", ".join(f"{rss_mb(pid):.0f} MB" for pid in memory.pids)
        )
        memory.start()

        def big(label: str, csv: bool) -> tuple[float, float]:
            cids = [f"BIG-{len(label)}{csv:d}-{n:06d}" for n in range(args.customers)]
            timing = big_submit(base, "bench-big", cids, csv)
            print(
                f"{label}: review {timing['review']:.2f} s, confirm {timing['confirm']:.2f} s, "
                f"batch page {timing['batch page']:.2f} s"
            )
            return timing["started"], timing["ended"]

        big("CSV file, alone", csv=True)
        big("typed, alone", csv=False)
        stopping, waits = threading.Event(), []
        others = [
            threading.Thread(target=small_submitter, args=(base, name, secret, stopping, waits))
            for name, secret in accounts[1:]
        ]
        for thread in others:
            thread.start()
        time.sleep(2)  # the others' pace before the big submission, to compare
        windows = [big(f"CSV file, {args.others} others submitting", csv=True)]
        time.sleep(1)
        stopping.set()
        for thread in others:
            thread.join()
        memory.stopping.set()
        memory.join()
        print(
            f"server memory peak: {memory.peak:.0f} MB (all gunicorn processes); each: "
            + ", ".join(f"{peak:.0f} MB" for peak in memory.peaks.values())
        )

    def during(start, end):
        return [w for w in waits if w[0] < end and w[0] + w[1] > start]

    alone = [s for t, s, _ in waits if all(not (a <= t <= b) for a, b in windows)]
    busy = [w for a, b in windows for w in during(a, b)]
    errors = sorted({status for _t, _s, status in waits if status != 201})
    print(
        f"others without it: {len(alone)} submits, median "
        f"{statistics.median(alone) * 1000:.0f} ms; "
        f"while it was in hand: {len(busy)} submits, "
        f"longest wait {max(s for _t, s, _ in busy) * 1000:.0f} ms, "
        f"over 1 s: {sum(1 for _t, s, _ in busy if s > 1)}; errors {errors}"
    )


if __name__ == "__main__":
    main()
