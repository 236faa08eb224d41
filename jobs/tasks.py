"""The address of the job task in the queues of releases before it moved.

A task row stores the dotted path of the function it runs. The task is declared beside its
body in jobs.services.running, where the services that queue it reach it without importing a
module above them; rows queued before that move name `jobs.tasks.run_job`, and a worker
finds the task here.
"""

from __future__ import annotations

from jobs.services.running import run_job

__all__ = ["run_job"]
