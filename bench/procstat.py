"""CPU time and memory of processes, read from /proc (Linux), for the benchmarks that measure
what a process tree or the database server spends."""

from __future__ import annotations

import os
import resource
from pathlib import Path


def processes() -> list[tuple[int, int, str, float]]:
    """(pid, parent pid, command line, CPU seconds) of every process still readable."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
        found.append((int(entry.name), int(stat[1]), command, cpu))
    return found


def tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    found = processes()
    pids = [pid]
    children = {pid}
    grew = True
    while grew:
        grew = False
        for process_pid, parent, _, _ in found:
            if parent in children and process_pid not in children:
                children.add(process_pid)
                pids.append(process_pid)
                grew = True
    return pids


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of `pid` and its live descendants."""
    pids = set(tree(pid))
    return sum(cpu for process_pid, _, _, cpu in processes() if process_pid in pids)


def database_cpu(name: str) -> float:
    """CPU seconds of the PostgreSQL server processes serving the database `name` (0 on
    SQLite, whose work is done inside the processes that use it)."""
    return sum(
        cpu
        for _, _, command, cpu in processes()
        if command.startswith("postgres:") and f" {name} " in command
    )


def resident_mb(pid: int) -> float:
    """Resident memory of `pid` and its descendants together, in MB."""
    total = 0.0
    for member in tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


def own_cpu() -> float:
    """User + system CPU seconds of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load() -> str:
    """The machine's load averages over 1, 5 and 15 minutes."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
