r"""HTTP submits on the production server: the web form (form, review, confirm) against the
JSON API (one request), 16 concurrent clients, 10 new customers a submit, in one run.

    .venv/bin/python bench/http_submits.py [--clients 16] [--submits 20]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_bench_http \
        .venv/bin/python bench/http_submits.py

SQLite: a scratch file made afresh. PostgreSQL: a scratch database whose name contains "bench"
(created with createdb; it is migrated and emptied of jobs). gunicorn runs as `make run` starts
it (tmsdash/gunicorn.py, TMS_WEB_PROCESSES x TMS_WEB_THREADS); jobs are queued, not run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = Path(tempfile.gettempdir()) / "tmsdash-bench-http.sqlite3"
PASSWORD = "bench-Pass-4-http-submits"  # noqa: S105 (a scratch database)
CLUSTER_TOKEN = "bench-cluster-token"  # noqa: S105
PORT = 8765


def setup_database(clients: int) -> list[tuple[str, str]]:
    """Migrate, empty the jobs, make the users and their API tokens."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tmsdash.settings")
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from api.tokens import token_create
    from jobs.models import Cluster, InFlightCustomer, Job

    call_command("migrate", verbosity=0)
    InFlightCustomer.objects.all().delete()
    Job.objects.all().delete()
    Cluster.objects.get_or_create(
        name="bench", defaults={"base_url": "http://127.0.0.1:9/", "max_cids_per_request": 500}
    )
    users = []
    for n in range(clients):
        user, _ = User.objects.get_or_create(username=f"bench{n}")
        user.set_password(PASSWORD)
        user.save()
        user.groups.add(Group.objects.get(name="Operators"))
        users.append((user.username, token_create(user=user, name="bench").secret))
    return users


def hidden(page: requests.Response, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', page.text)[1]


def form_client(base: str, username: str, label: str, submits: int, times: list, errors: list):
    session = requests.Session()
    login = session.get(f"{base}/accounts/login/")
    session.post(
        f"{base}/accounts/login/",
        data={
            "csrfmiddlewaretoken": hidden(login, "csrfmiddlewaretoken"),
            "username": username,
            "password": PASSWORD,
        },
    )
    cluster = re.search(r'<option value="(\d+)">bench</option>', session.get(f"{base}/").text)[1]
    for i in range(submits):
        started = time.perf_counter()
        page = session.get(f"{base}/")
        review = session.post(
            f"{base}/",
            data={
                "csrfmiddlewaretoken": hidden(page, "csrfmiddlewaretoken"),
                "idempotency_key": hidden(page, "idempotency_key"),
                "action": "1",
                "cluster": cluster,
                "cids": " ".join(f"{label}{username}-{i}-{c}" for c in range(10)),
                "token": CLUSTER_TOKEN,
            },
        )
        confirm = re.search(
            r'<form method="post" id="confirm-set-action-form".*?</form>', review.text, re.S
        )
        fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', confirm[0]))
        done = session.post(f"{base}/", data=fields, allow_redirects=False)
        times.append(time.perf_counter() - started)
        if done.status_code != 302:
            errors.append(done.status_code)


def api_client(base: str, username: str, secret: str, submits: int, times: list, errors: list):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {secret}"
    for i in range(submits):
        started = time.perf_counter()
        answer = session.post(
            f"{base}/api/v1/set-actions",
            json={
                "action": "T-Enable",
                "cluster": "bench",
                "cids": [f"api{username}-{i}-{c}" for c in range(10)],
                "cluster_token": CLUSTER_TOKEN,
            },
            headers={"Idempotency-Key": f"{username}-{i}"},
        )
        times.append(time.perf_counter() - started)
        if answer.status_code != 201:
            errors.append(answer.status_code)


def run(name: str, targets: list) -> None:
    times: list[float] = []
    errors: list[int] = []
    threads = [threading.Thread(target=t, args=(*args, times, errors)) for t, args in targets]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    p95 = statistics.quantiles(times, n=20)[18] * 1000
    print(
        f"{name}: {len(times) / elapsed:.0f} submits/s, p95 {p95:.0f} ms, "
        f"{len(errors)} errors {sorted(set(errors))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--submits", type=int, default=20)
    args = parser.parse_args()
    if "bench" not in os.environ.get("DATABASE_URL", "bench"):
        sys.exit("DATABASE_URL must name a scratch database whose name contains 'bench'.")
    if not os.environ.get("DATABASE_URL"):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{SCRATCH}{suffix}").unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{SCRATCH}"
    os.environ.update(
        {
            "SECRET_KEY": os.environ.get("SECRET_KEY", "bench"),
            "ENV_FILE": "/dev/null",
            "LOG_LEVEL": "WARNING",
            "TMS_WEB_BIND": f"127.0.0.1:{PORT}",
            "TMS_API_SUBMITS_PER_MINUTE": "1000000",
            "TMS_API_READS_PER_MINUTE": "1000000",
            "TMS_SIGNIN_FAILURE_LIMIT": "1000",
        }
    )
    users = setup_database(args.clients)
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"], cwd=ROOT, check=True
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "python:tmsdash.gunicorn"], cwd=ROOT
    )
    base = f"http://127.0.0.1:{PORT}"
    try:
        for _ in range(100):
            try:
                requests.get(f"{base}/healthz", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        print(json.dumps({"engine": os.environ["DATABASE_URL"].split(":")[0], **vars(args)}))
        run(
            "web form (form, review, confirm)",
            [(form_client, (base, u, "form", args.submits)) for u, _ in users],
        )
        run("API (one POST)", [(api_client, (base, u, s, args.submits)) for u, s in users])
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
