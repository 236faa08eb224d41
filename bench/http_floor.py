r"""The authenticated no-op against Django's floor, on the server `make run` starts
(tmsdash/gunicorn.py: its processes, threads and settings, DEBUG off), 16 clients at once for
20 s a phase, in one run:

    .venv/bin/python bench/http_floor.py [--clients 16] [--seconds 20]
    createdb -h 127.0.0.1 -U postgres tms_bench_floor
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tms_bench_floor \
        .venv/bin/python bench/http_floor.py

- the authenticated no-op: `GET /api/v1/jobs/<unknown id>` with a bearer token, 404 (the
  token checked, the rate window counted, the permission asked, the job looked for);
- a Django view that answers a constant (bench/floor_urls.py), through the whole middleware
  of production's settings: what any request of the dashboard pays before its view. The
  server loads the bench's settings (bench/floor_settings.py: production's, with that view
  added to the URLs), so the product's URLs never hold it;
- then, on a server started again without any middleware (BENCH_FLOOR_BARE), the same view
  bare: what the middleware costs.

Each phase's rate, median and p95; the ratio the issue asks for is the constant's rate over
the no-op's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile

import requests
from scratch import ROOT, scratch_django
from webserver import SERVER_ENV, api_nothing, bearer, gunicorn, load, operators

scratch_django("floor", **SERVER_ENV)

BENCH = {"DJANGO_SETTINGS_MODULE": "floor_settings", "PYTHONPATH": str(ROOT / "bench")}


def constant(session: requests.Session, base: str) -> str:
    answer = session.get(f"{base}/bench/constant")
    return "" if answer.status_code == 200 and answer.content == b"ok" else f"{answer.status_code}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    accounts = operators([f"floor{n}" for n in range(args.clients)])
    from django.db import connection

    print(f"engine: {connection.vendor}, {args.clients} clients, {args.seconds:g} s a phase")
    output = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (read after the servers stop)
    sessions = [bearer(secret) for _name, secret in accounts]
    with gunicorn(stderr=output, env=BENCH) as (base, _server):
        noop = load(
            "authenticated no-op (GET /api/v1/jobs/<unknown>, 404)",
            args.seconds,
            sessions,
            lambda session, _i: api_nothing(session, base),
        )
        print(noop.line())
        floor = load(
            "a constant, through the middleware",
            args.seconds,
            sessions,
            lambda session, _i: constant(session, base),
        )
        print(floor.line())
    print(f"the constant / the no-op: {floor.rate / noop.rate:.2f} (the goal: <= 1.5)")
    with gunicorn(stderr=output, env={**BENCH, "BENCH_FLOOR_BARE": "true"}) as (base, _server):
        bare = load(
            "the constant, no middleware",
            args.seconds,
            sessions,
            lambda session, _i: constant(session, base),
        )
        print(bare.line())
    print(f"the constant bare / through the middleware: {bare.rate / floor.rate:.2f}")
    output.seek(0)
    errors = [line for line in output.read().splitlines() if " ERROR " in line]
    if errors:
        print("errors logged:", *errors[:5], sep="\n  ")
        sys.exit(1)


if __name__ == "__main__":
    main()
