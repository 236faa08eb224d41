r"""HTTP submits on the production server while a worker runs every job: 16 clients at once for
20 s a phase, 10 new customers a submit, each against a request that finds nothing on the same
server in the same run.

    .venv/bin/python bench/http_submits.py [--clients 16] [--seconds 20] [--clicks 60]
    createdb -h 127.0.0.1 -U postgres tms_bench_http
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_bench_http \
        .venv/bin/python bench/http_submits.py

gunicorn runs as `make run` starts it (tmsdash/gunicorn.py, DEBUG off), and so does a worker
(`run_worker`, TMS_WORKER_CONCURRENCY calls at once; not with --without-worker), which runs
the jobs as they are queued against a cluster address that refuses connections, so that its
writes (claim, end, audit) and its CPU compete with the submits' as in production. The
phases, each with every client at once for --seconds:

- the API's reference: `GET /api/v1/jobs/<unknown id>` with a bearer token, 404 (the token
  checked, the rate window counted, the permission asked, the job looked for);
- API submits: `POST /api/v1/set-actions`, one request, 201;
- the pages' reference: a signed-in session's `GET /jobs/<unknown id>/`, 404;
- the form's submissions: its review and its confirmation (2 requests, the confirmation
  answered by a redirect; each timed too).

The worker runs what the submits queued before the next phase starts. Then one client alone
clicks Confirm --clicks times and follows the redirect to the job page: click to job page.
Errors are any other answer, and any "database is locked" in the server's or the worker's
output.

With BENCH_WORKER_CPUS set (bench/pinning.py), the worker runs on those cores, gunicorn and the
clients on the others.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import requests
from pinning import others_pinned, worker_command
from scratch import ROOT, scratch_django
from webserver import (
    CLUSTER_TOKEN,
    SERVER_ENV,
    api_nothing,
    bearer,
    bench_cluster,
    confirm_fields,
    gunicorn,
    hidden,
    load,
    operators,
    page_nothing,
    percentile,
    signed_in,
)

scratch_django("http", **SERVER_ENV)


def api_submit(session: requests.Session, base: str, name: str, i: int) -> str:
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
    return "" if answer.status_code == 201 else f"submit {answer.status_code}"


class FormClient:
    """A signed-in operator who has opened the form once: each submission is its review and
    its confirmation, with a key of its own (the form's CSRF token stays valid)."""

    def __init__(self, base: str, name: str) -> None:
        self.base, self.name = base, name
        self.session = signed_in(base, name)
        page = self.session.get(f"{base}/")
        self.csrf = hidden(page, "csrfmiddlewaretoken")
        self.cluster = bench_cluster(page)
        self.reviews: list[float] = []
        self.confirms: list[float] = []

    def review(self, cids: str) -> requests.Response:
        return self.session.post(
            f"{self.base}/",
            data={
                "csrfmiddlewaretoken": self.csrf,
                "idempotency_key": uuid.uuid4().hex,
                "action": "1",
                "cluster": self.cluster,
                "cids": cids,
                "token": CLUSTER_TOKEN,
            },
        )

    def submit(self, i: int) -> str:
        started = time.perf_counter()
        review = self.review(" ".join(f"form-{self.name}-{i}-{c}" for c in range(10)))
        clicked = time.perf_counter()
        if review.status_code != 200:
            return f"review {review.status_code}"
        done = self.session.post(
            f"{self.base}/", data=confirm_fields(review), allow_redirects=False
        )
        self.reviews.append(clicked - started)
        self.confirms.append(time.perf_counter() - clicked)
        return "" if done.status_code == 302 else f"confirm {done.status_code}"


def clicks(client: FormClient, count: int) -> list[float]:
    """Confirm, then the job page the confirmation redirects to: one client, one at a time."""
    times = []
    for i in range(count):
        fields = confirm_fields(client.review(f"click-{i}"))
        started = time.perf_counter()
        page = client.session.post(f"{client.base}/", data=fields)
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


def timed(label: str, times: list[float]) -> str:
    return (
        f"  {label}: median {statistics.median(times) * 1000:.0f} ms, "
        f"p95 {percentile(times, 95):.0f} ms"
    )


def measure(args: argparse.Namespace, accounts: list[tuple[str, str]], output) -> None:
    """The phases, with the worker and gunicorn writing to `output`."""
    worker = None
    if not args.without_worker:
        worker = subprocess.Popen(
            worker_command([sys.executable, "manage.py", "run_worker"]),
            cwd=ROOT,
            stdout=output,
            stderr=output,
        )
    try:
        with gunicorn(stderr=output) as (base, _server):
            tokens = [(name, bearer(secret)) for name, secret in accounts]
            api_ref = load(
                "API reference (GET /api/v1/jobs/<unknown>, 404)",
                args.seconds,
                tokens,
                lambda client, _i: api_nothing(client[1], base),
            )
            print(api_ref.line())
            api = load(
                "API submits (POST /api/v1/set-actions)",
                args.seconds,
                tokens,
                lambda client, i: api_submit(client[1], base, client[0], i),
            )
            print(api.line())
            drained(worker)
            forms = [FormClient(base, name) for name, _secret in accounts]
            page_ref = load(
                "page reference (GET /jobs/<unknown>/, 404, signed in)",
                args.seconds,
                [form.session for form in forms],
                lambda session, _i: page_nothing(session, base),
            )
            print(page_ref.line())
            form = load(
                "form submissions (review + confirmation)",
                args.seconds,
                forms,
                lambda client, i: client.submit(i),
            )
            print(form.line())
            print(timed("the review alone", [t for f in forms for t in f.reviews]))
            print(timed("the confirmation alone", [t for f in forms for t in f.confirms]))
            print(f"API submits / API reference: {api.rate / api_ref.rate:.2f}")
            print(f"form submissions / page reference: {form.rate / page_ref.rate:.2f}")
            drained(worker)
            alone = clicks(forms[0], args.clicks)
            print(
                f"click to job page, one client: median {statistics.median(alone) * 1000:.0f} ms, "
                f"p95 {percentile(alone, 95):.0f} ms"
            )
    finally:
        if worker:
            worker.terminate()
            worker.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clicks", type=int, default=60)
    parser.add_argument(
        "--without-worker", action="store_true", help="queue the jobs but run none of them"
    )
    args = parser.parse_args()
    accounts = operators([f"bench{n}" for n in range(args.clients)])
    from django.db import connection

    worker = "without a worker" if args.without_worker else "with a worker"
    print(
        f"engine: {connection.vendor}, {args.clients} clients, {args.seconds:g} s a phase, {worker}"
    )
    output = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (read after both have stopped)
    with others_pinned() as pinning:
        print(pinning)
        measure(args, accounts, output)
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
