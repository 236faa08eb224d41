"""A PostgreSQL server of a test's (or a benchmark's) own, to stop and start as a fault:
`initdb` into a temporary folder, `pg_ctl` on a free loopback port. Debian keeps both under
/usr/lib/postgresql/<version>/bin; they refuse to run as root, so as root they run as the
`postgres` user."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from devtools.ports import free_port

START_SECONDS = 60


def _bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"no {name} under /usr/lib/postgresql")
    return str(found[-1])


class OwnPostgres:
    """`with OwnPostgres() as server:` a running server, its one database at `server.url`;
    removed, folder and all, at the end."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        self.folder = Path(tempfile.mkdtemp(prefix="tmsdash-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.running = False

    def _run(self, *command: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        result = subprocess.run(
            [*as_postgres, *command], capture_output=True, text=True, timeout=START_SECONDS
        )
        if result.returncode:
            raise RuntimeError(f"{command[0]} failed:\n{result.stdout}{result.stderr}")

    def _pg_ctl(self, *action: str) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k {self.folder}"
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, *action)

    def start(self) -> None:
        self._pg_ctl("-w", "start")
        self.running = True

    def stop(self) -> None:
        """A fast shutdown: every session ends, as when the server restarts."""
        self._pg_ctl("-w", "-m", "fast", "stop")
        self.running = False

    def restart(self) -> None:
        self._pg_ctl("-w", "-m", "fast", "restart")

    def __enter__(self) -> OwnPostgres:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        self._run(_bin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.running:
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
