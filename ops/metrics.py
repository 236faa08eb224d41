"""The metrics behind /metrics, in Prometheus' text format.

Every value is read from the database at scrape time, so that it is the same whichever web
process or host answers the scrape, and counts what every worker on every host did: jobs
ended (they are never deleted, so the counts only grow), calls in flight (the clusters' call
slots), live workers (heartbeats), and failed sign-ins (a counter row).
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum

from jobs.models import Cluster, InFlightCall, Job
from jobs.services import NOT_STARTED
from ops.counters import SIGNIN_FAILURES, counter_value
from ops.heartbeats import workers_alive

Status = Job.Status
# Upper bounds, in seconds, of the call-duration histogram's buckets.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
ENDED_BY_A_CALL = {Status.SUCCESS: "success", Status.FAILED: "failed"}

Sample = tuple[dict[str, str], float]


def metrics_text() -> str:
    families = [
        (
            "tmsdash_jobs_total",
            "counter",
            "Jobs ended, by status, cluster and action.",
            _jobs_ended(),
        ),
        (
            "tmsdash_jobs_queued",
            "gauge",
            "Jobs not started yet, those waiting for their cluster included.",
            [({}, Job.objects.in_progress().filter(started_at__isnull=True).count())],
        ),
        (
            "tmsdash_calls_in_flight",
            "gauge",
            "Calls to each active cluster in flight now, from all workers.",
            _calls_in_flight(),
        ),
        (
            "tmsdash_call_duration_seconds",
            "histogram",
            "From a job's start to its result, for jobs that ended SUCCESS or FAILED.",
            _call_durations(),
        ),
        (
            "tmsdash_reaped_total",
            "counter",
            "Jobs the reaper ended: interrupted mid-call (UNKNOWN) or never started (FAILED).",
            _reaped(),
        ),
        (
            "tmsdash_signin_failures_total",
            "counter",
            "Failed sign-ins, refused ones during a lock-out included.",
            [({}, counter_value(SIGNIN_FAILURES))],
        ),
        (
            "tmsdash_workers_alive",
            "gauge",
            "Workers that sent a heartbeat in the last 30 seconds.",
            [({}, workers_alive())],
        ),
    ]
    lines = []
    for name, kind, help_text, samples in families:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        lines += [_line(name, labels, value) for labels, value in samples]
    return "\n".join(lines) + "\n"


def _jobs_ended() -> list[Sample]:
    rows = (
        Job.objects.exclude(status=Status.IN_PROGRESS)
        .values("status", "cluster__name", "action")
        .annotate(n=Count("pk"))
        .order_by("status", "cluster__name", "action")
    )
    return [
        (
            {
                "status": row["status"],
                "cluster": row["cluster__name"] or "",
                "action": _action_name(row["action"]),
            },
            row["n"],
        )
        for row in rows
    ]


def _calls_in_flight() -> list[Sample]:
    in_flight = dict(
        InFlightCall.objects.values("cluster_id")
        .annotate(n=Count("pk"))
        .values_list("cluster_id", "n")
    )
    clusters = Cluster.objects.filter(Q(is_active=True) | Q(pk__in=in_flight))
    return [({"cluster": c.name}, in_flight.get(c.pk, 0)) for c in clusters.order_by("name")]


def _call_durations() -> list[Sample]:
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    rows = (
        Job.objects.filter(
            status__in=ENDED_BY_A_CALL, started_at__isnull=False, finished_at__isnull=False
        )
        .annotate(duration=duration)
        .values("cluster__name", "status")
        .annotate(
            total=Count("pk"),
            seconds=Sum("duration"),
            **{
                f"le_{n}": Count("pk", filter=Q(duration__lte=timedelta(seconds=bound)))
                for n, bound in enumerate(BUCKETS)
            },
        )
        .order_by("cluster__name", "status")
    )
    samples = []
    for row in rows:
        labels = {"cluster": row["cluster__name"] or "", "outcome": ENDED_BY_A_CALL[row["status"]]}
        for n, bound in enumerate(BUCKETS):
            samples.append(({**labels, "le": f"{bound:g}"}, row[f"le_{n}"]))
        samples.append(({**labels, "le": "+Inf"}, row["total"]))
        total_seconds = (row["seconds"] or timedelta()).total_seconds()
        samples.append(({**labels, "__name__": "sum"}, total_seconds))
        samples.append(({**labels, "__name__": "count"}, row["total"]))
    return samples


def _reaped() -> list[Sample]:
    counts = Job.objects.filter(legacy_id="").aggregate(
        interrupted=Count("pk", filter=Q(status=Status.UNKNOWN)),
        not_started=Count("pk", filter=Q(status=Status.FAILED, error_message=NOT_STARTED)),
    )
    return [({"reason": reason}, count) for reason, count in counts.items()]


def _action_name(code: int) -> str:
    try:
        return Job.Action(code).label
    except ValueError:
        return str(code)


def _line(name: str, labels: dict[str, str], value: float) -> str:
    """One sample; a histogram's buckets, sum and count share its name as Prometheus wants."""
    labels = dict(labels)
    suffix = labels.pop("__name__", "bucket" if "le" in labels else None)
    if suffix:
        name = f"{name}_{suffix}"
    if not labels:
        return f"{name} {_number(value)}"
    text = ",".join(f'{key}="{_escape(str(val))}"' for key, val in labels.items())
    return f"{name}{{{text}}} {_number(value)}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
