"""Time import_legacy and dedupe_jobs on a large legacy file, with each command's peak memory.

    .venv/bin/python bench/legacy_bench.py [--jobs 1000000] [--audit-rows 0] [--apply]
                                           [--postgres URL]

Everything goes under /tmp/legacy_bench (override with --dir): the legacy file (generated
once by legacy_generate.py, reused while its size matches) and a fresh SQLite database
migrated for each run (or, with --postgres, that database, which is flushed first: use one
of your own). Each command runs as its own process; its wall time and peak RSS (from
os.wait4) are printed, with the last lines of its output.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(name: str, args: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("w") as out:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=out, stderr=out
        )
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.monotonic() - started
    tail = log.read_text().splitlines()[-3:]
    code = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    load = os.getloadavg()[0]
    # ru_maxrss is in kilobytes on Linux. CPU time and the load average tell how much of the
    # wall time was this command's own work on a machine shared with other processes.
    print(
        f"{name}: {elapsed:.1f} s wall, {cpu:.1f} s CPU, peak RSS "
        f"{usage.ru_maxrss / 1024:.0f} MB, load average {load:.1f}, exit {code}"
    )
    for line in tail:
        print(f"    {line[:160]}")
    if code != 0:
        sys.exit(f"{name} failed; see {log}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "legacy_bench")
    parser.add_argument("--audit-rows", type=int, default=0, help="Also import an audit.db.")
    parser.add_argument("--apply", action="store_true", help="Also time dedupe_jobs --apply.")
    parser.add_argument("--postgres", metavar="URL", help="Use this PostgreSQL database.")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    legacy = args.dir / "jobs.db"
    audit = args.dir / "audit.db"
    marker = args.dir / f"jobs.db.{args.jobs}.{args.audit_rows}"
    if not (legacy.exists() and marker.exists()):
        generator = Path(__file__).resolve().parent / "legacy_generate.py"
        subprocess.run(
            [
                sys.executable,
                str(generator),
                *("--jobs", str(args.jobs), "--out", str(legacy)),
                *("--audit-rows", str(args.audit_rows)),
            ],
            check=True,
        )
        marker.touch()
    env = dict(os.environ, SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-secret-key"))
    if args.postgres:
        env["DATABASE_URL"] = args.postgres
        run("flush", ["flush", "--no-input"], env, args.dir / "flush.log")
    else:
        database = args.dir / "tms.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        env["DATABASE_URL"] = f"sqlite:///{database}"
    run("migrate", ["migrate", "--no-input"], env, args.dir / "migrate.log")
    common = ["--jobs-db", str(legacy), "--timezone", "UTC"]
    if args.audit_rows:
        common += ["--audit-db", str(audit)]
    run("import_legacy", ["import_legacy", *common], env, args.dir / "import.log")
    run("import_legacy again", ["import_legacy", *common], env, args.dir / "import2.log")
    run("dedupe_jobs (report)", ["dedupe_jobs"], env, args.dir / "dedupe.log")
    if args.apply:
        run("dedupe_jobs --apply", ["dedupe_jobs", "--apply"], env, args.dir / "apply.log")


if __name__ == "__main__":
    main()
