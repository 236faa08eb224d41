"""A real `manage.py run_dashboard` for the tests, and every process it started."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from ops.models import WorkerHeartbeat
from tests.helpers import answers, database_url, free_port, wait_until

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 2
# Set in the runner's environment, which every process it starts inherits, however deep: how
# the tests find them all, the ones a runner left behind included.
MARKER = "TMS_TEST_DASHBOARD"


class Dashboard:
    """A `run_dashboard` on the tests' database, in a process group of its own like a
    terminal's foreground job that Ctrl-C signals; its output read as it comes."""

    def __init__(self, *args: str, fake_cluster_port: int | None = None) -> None:
        self.web = f"127.0.0.1:{free_port()}"
        self.fake_cluster_port = fake_cluster_port or free_port()
        self.marker = uuid.uuid4().hex
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "run_dashboard",
                "--addrport",
                self.web,
                "--concurrency",
                str(CONCURRENCY),
                "--fake-cluster-port",
                str(self.fake_cluster_port),
                *args,
            ],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": database_url(), MARKER: self.marker},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def url(self, path: str) -> str:
        return f"http://{self.web}{path}"

    def interrupt(self) -> None:
        """A Ctrl-C at the terminal."""
        os.killpg(self.process.pid, signal.SIGINT)

    def wait(self, timeout: float = 60) -> str:
        """Wait for the runner to exit; all it wrote."""
        self.process.wait(timeout=timeout)
        self.reader.join(timeout=timeout)
        return self.output

    def processes(self) -> dict[int, str]:
        """Every live process of this run but the runner itself, with its command line."""
        found = {}
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                environ = (proc / "environ").read_bytes()
                command = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            pid = int(proc.name)
            mine = f"{MARKER}={self.marker}".encode() in environ.split(b"\0")
            if mine and pid != self.process.pid and state_of(pid) != "Z":
                found[pid] = command.replace(b"\0", b" ").decode()
        return found

    def pids_of(self, ending: str) -> list[int]:
        """The live processes whose command line ends with `ending`."""
        return [pid for pid, command in self.processes().items() if command.endswith(ending)]

    def wait_ready(self) -> None:
        """Wait until the web server and the fake cluster answer and the worker has sent its
        heartbeat."""
        wait_until(lambda: answers(self.url("/accounts/login/")), timeout=60)
        wait_until(lambda: answers(f"http://127.0.0.1:{self.fake_cluster_port}/_counts"), 60)
        workers = WorkerHeartbeat.objects.filter(role=WorkerHeartbeat.Role.WORKER)
        wait_until(lambda: workers.count() == 1, timeout=60)

    def close(self) -> None:
        """Kill whatever of this run is still there."""
        if self.process.poll() is None:
            self.process.kill()
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.wait(timeout=30)


def state_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
