r"""Time what /healthz and /metrics read, on a database filled by bench/admin_data.py.

    SECRET_KEY=bench DATABASE_URL=sqlite:////tmp/tms_admin_bench.sqlite3 \
        .venv/bin/python bench/ops_endpoints.py [--runs 5]

Both read every value from the database at each request (so that every process and host gives
the same answer); this measures that cost at the benchmark's size. It writes nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tmsdash.settings")
    import django

    django.setup()
    from django.db import connection

    from jobs.models import Job
    from ops.health import health_report
    from ops.metrics import metrics_text

    print(f"engine: {connection.vendor}, {Job.objects.count():,} jobs")
    for name, read in (("/healthz", health_report), ("/metrics", metrics_text)):
        read()
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            read()
            times.append((time.perf_counter() - started) * 1000)
        print(f"{name}: median {statistics.median(times):.0f} ms, slowest {max(times):.0f} ms")


if __name__ == "__main__":
    main()
