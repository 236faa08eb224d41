r"""HTTP submits on the production server, 16 concurrent signed-in clients, 10 new customers a
submit, against an authenticated request that does next to nothing, in one run.

    .venv/bin/python bench/http_submits.py [--clients 16] [--submits 25] [--clicks 60]
    createdb -h 127.0.0.1 -U postgres tms_bench_http
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_bench_http \
        .venv/bin/python bench/http_submits.py

gunicorn runs as `make run` starts it (tmsdash/gunicorn.py, DEBUG off), and so does a worker
(`run_worker`, TMS_WORKER_CONCURRENCY calls at once; not with --without-worker), which runs
the jobs as they are queued against a cluster address that refuses connections, so that its
writes (claim, end, audit) and its CPU compete with the submits' as in production. Measured,
each with all clients at once:

- the reference: `GET /api/v1/clusters` with a bearer token (authentication, one small
  query, a few hundred bytes of JSON);
- API submits: `POST /api/v1/set-actions`, one request;
- web form submits: the form, its review and the confirmation (3 requests; the confirmation
  alone is timed too).

Then, once the worker has run every job, one client alone clicks Confirm --clicks times and
follows the redirect to the job page: click to job page. Errors are any other answer, and any
"database is locked" in the server's or the worker's output.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import requests
from scratch import ROOT, scratch_django
from webserver import (
    CLUSTER_TOKEN,
    SERVER_ENV,
    bench_cluster,
    confirm_fields,
    gunicorn,
    hidden,
    operators,
    signed_in,
)

scratch_django("http", **SERVER_ENV)


def reference_client(base, name, secret, count, times, errors) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {secret}"
    for _ in range(count):
        started = time.perf_counter()
        answer = session.get(f"{base}/api/v1/clusters")
        times.append(time.perf_counter() - started)
        if answer.status_code != 200:
            errors.append(answer.status_code)


def api_client(base, name, secret, count, times, errors) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {secret}"
    for i in range(count):
        started = time.perf_counter()
        answer = session.post(
            f"{base}/api/v1/set-actions",
            json={
                "action": "T-Enable",
                "cluster": "bench",
                "cids": [f"api-{name}-{i}-{c}" for c in range(10)],
                "cluster_token": CLUSTER_TOKEN,
            },
            headers={"Idempotency-Key": f"{name}-{i}"},
        )
        times.append(time.perf_counter() - started)
        if answer.status_code != 201:
            errors.append(answer.status_code)


def review(session: requests.Session, base: str, cids: str) -> requests.Response:
    page = session.get(f"{base}/")
    return session.post(
        f"{base}/",
        data={
            "csrfmiddlewaretoken": hidden(page, "csrfmiddlewaretoken"),
            "idempotency_key": hidden(page, "idempotency_key"),
            "action": "1",
            "cluster": bench_cluster(page),
            "cids": cids,
            "token": CLUSTER_TOKEN,
        },
    )


def form_client(base, name, secret, count, times, errors, confirms) -> None:
    session = signed_in(base, name)
    for i in range(count):
        started = time.perf_counter()
        fields = confirm_fields(
            review(session, base, " ".join(f"form-{name}-{i}-{c}" for c in range(10)))
        )
        clicked = time.perf_counter()
        done = session.post(f"{base}/", data=fields, allow_redirects=False)
        ended = time.perf_counter()
        times.append(ended - started)
        confirms.append(ended - clicked)
        if done.status_code != 302:
            errors.append(done.status_code)


def clicks(base: str, name: str, count: int) -> list[float]:
    """Confirm, then the job page the confirmation redirects to: one client, one at a time."""
    session = signed_in(base, name)
    times = []
    for i in range(count):
        fields = confirm_fields(review(session, base, f"click-{i}"))
        started = time.perf_counter()
        page = session.post(f"{base}/", data=fields)
        times.append(time.perf_counter() - started)
        if page.status_code != 200 or "/jobs/" not in page.url:
            sys.exit(f"click {i}: {page.status_code} {page.url}")
    return times


def drained(worker: subprocess.Popen | None) -> None:
    """Wait until the worker has run every job queued so far."""
    from jobs.models import Job

    started = time.perf_counter()
    while worker and Job.objects.in_progress().exists():
        time.sleep(0.2)
    if worker:
        print(f"  (the worker ran the queued jobs in {time.perf_counter() - started:.0f} s more)")


def run(label: str, client, base: str, accounts, count: int, *extra) -> float:
    times: list[float] = []
    errors: list[int] = []
    threads = [
        threading.Thread(target=client, args=(base, name, secret, count, times, errors, *extra))
        for name, secret in accounts
    ]
    started, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    rate = len(times) / elapsed
    print(
        f"{label}: {rate:.0f}/s, median {statistics.median(times) * 1000:.0f} ms, "
        f"p95 {percentile(times, 95):.0f} ms, errors {len(errors)} {sorted(set(errors))}; "
        f"the clients used {(time.process_time() - cpu) / elapsed:.0%} of a core"
    )
    return rate


def percentile(times: list[float], p: int) -> float:
    return statistics.quantiles(times, n=100)[p - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--submits", type=int, default=25)
    parser.add_argument("--clicks", type=int, default=60)
    parser.add_argument(
        "--without-worker", action="store_true", help="queue the jobs but run none of them"
    )
    args = parser.parse_args()
    accounts = operators([f"bench{n}" for n in range(args.clients)])
    from django.db import connection

    worker = "without a worker" if args.without_worker else "with a worker"
    print(f"engine: {connection.vendor}, {args.clients} clients, {args.submits} each, {worker}")
    output = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (read after both have stopped)
    worker = None
    if not args.without_worker:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker"], cwd=ROOT, stdout=output, stderr=output
        )
    try:
        with gunicorn(stderr=output) as (base, _server):
            reference = run(
                "reference (GET /api/v1/clusters)",
                reference_client,
                base,
                accounts,
                args.submits * 2,
            )
            api = run("API submits", api_client, base, accounts, args.submits)
            confirms: list[float] = []
            form = run(
                "web form submits (3 requests)", form_client, base, accounts, args.submits, confirms
            )
            print(
                f"  the confirmation alone: median {statistics.median(confirms) * 1000:.0f} ms, "
                f"p95 {percentile(confirms, 95):.0f} ms"
            )
            print(f"API submits / reference: {api / reference:.2f}")
            print(f"web form submits / reference: {form / reference:.2f}")
            drained(worker)
            alone = clicks(base, accounts[0][0], args.clicks)
            print(
                f"click to job page, one client: median {statistics.median(alone) * 1000:.0f} ms, "
                f"p95 {percentile(alone, 95):.0f} ms"
            )
    finally:
        if worker:
            worker.terminate()
            worker.wait(timeout=60)
    output.seek(0)
    log = output.read()
    locked = log.count("database is locked")
    print(f"\"database is locked\" in the server's and the worker's output: {locked}")
    if " ERROR " in log:
        print(
            "errors logged:",
            *[line for line in log.splitlines() if " ERROR " in line][:5],
            sep="\n  ",
        )


if __name__ == "__main__":
    main()
