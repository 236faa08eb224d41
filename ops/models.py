from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """A worker or housekeeping process that is running, or was: it refreshes `last_seen`
    every few seconds and deletes its row when it stops cleanly. A worker's row that has gone
    quiet is a worker that died; housekeeping ends the task rows it left RUNNING and then
    deletes the row. /healthz wants a live row of each role."""

    class Role(models.TextChoices):
        WORKER = "worker"
        HOUSEKEEPING = "housekeeping"

    worker_id = models.CharField(max_length=64, primary_key=True)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.WORKER)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["hostname", "pid"]

    def __str__(self) -> str:
        return f"{self.hostname}:{self.pid}"


class Counter(models.Model):
    """A metric's count for one set of labels, kept in the database, so that every process on
    every host adds to the same one and any of them can read it (ops.counters, ops.metrics)."""

    key = models.CharField(max_length=500, primary_key=True)
    name = models.CharField(max_length=100, db_index=True)
    labels = models.JSONField(default=dict)
    value = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"{self.key} = {self.value:g}"


class WriteProbe(models.Model):
    """The one row /healthz writes to learn that the database takes writes (ops.probe)."""

    written_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"written at {self.written_at}"


class DailyRun(models.Model):
    """The last day (in TIME_ZONE) a once-a-day housekeeping step ran, by name: the host whose
    compare-and-set moves it to today runs the step (ops.daily)."""

    name = models.CharField(max_length=50, primary_key=True)
    last_day = models.DateField()

    def __str__(self) -> str:
        return f"{self.name} last ran on {self.last_day}"
