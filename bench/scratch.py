"""Django set up for a benchmark script: on DATABASE_URL when it is set (a PostgreSQL database
whose name the script checks), else on a scratch SQLite file made afresh in the temporary
folder. Import it first, from a script under bench/ (its folder is on the path)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent


def scratch_django(name: str, **defaults: str) -> None:
    """Set up Django for the benchmark `name`; `defaults` are environment variables set
    unless the environment already sets them."""
    sys.path.insert(0, str(ROOT))
    if not os.environ.get("DATABASE_URL"):
        scratch = Path(tempfile.gettempdir()) / f"tmsdash-bench-{name}.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{scratch}{suffix}").unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{scratch}"
    for variable, value in {
        "DJANGO_SETTINGS_MODULE": "tmsdash.settings",
        # As in production: with DEBUG on, Django keeps every query in memory.
        "DEBUG": "false",
        # The same in every process a benchmark starts: it keys the tokens' encryption.
        "SECRET_KEY": "bench-only",
        "LOG_LEVEL": "WARNING",
        **defaults,
    }.items():
        os.environ.setdefault(variable, value)
    django.setup()
