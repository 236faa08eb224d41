r"""Time the jobs list's operator filter choices: EXISTS per user against the DISTINCT it replaced.

Run on a database filled by bench/admin_data.py (1,000,000 jobs by 40 operators):

    SECRET_KEY=bench DATABASE_URL=sqlite:////tmp/tms_admin_bench.sqlite3 \
        .venv/bin/python bench/operator_choices.py

Prints the median of each query's runs and their ratio, measured in the same run.
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
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL"):
        sys.exit("Set DATABASE_URL to the database filled by bench/admin_data.py.")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tmsdash.settings")
    import django

    django.setup()

    from django.contrib.auth import get_user_model
    from django.db import connection

    from jobs.forms import JobFilterForm
    from jobs.models import Job

    users = get_user_model().objects
    queries = {
        "EXISTS per user (now)": lambda: (
            JobFilterForm(may_see_others=True).fields["operator"].queryset
        ),
        "DISTINCT over jobs (before)": lambda: (
            users.filter(jobs__isnull=False).distinct().order_by("username")
        ),
    }
    print(f"{connection.vendor}: {Job.objects.count():,} jobs, {users.count()} users")
    medians = {}
    for name, make in queries.items():
        found = len(list(make()))
        times = []
        for _ in range(args.runs):
            began = time.perf_counter()
            list(make())
            times.append((time.perf_counter() - began) * 1000)
        medians[name] = statistics.median(times)
        print(f"  {name:<28} {medians[name]:8.2f} ms median, {found} operators")
    now, before = medians.values()
    print(f"  the DISTINCT takes {before / now:.0f} times as long")


if __name__ == "__main__":
    main()
