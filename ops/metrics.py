"""The metrics behind /metrics, in Prometheus' text format.

Every value comes from the database, so that it is the same whichever web process or host
answers the scrape and counts what every worker on every host did. Counts of events (jobs
ended, call durations, reaped jobs, failed sign-ins, approval requests made and ended) are
counter rows updated in the transaction of the event (ops.receivers), so a scrape reads a few
rows however many jobs there are; the counts start when the dashboard's metrics were installed
(those of approvals, when they were). Gauges (the queue, calls in flight, live workers,
pending approval requests, the audit chain's head) are read from the tables that hold them.
"""

from __future__ import annotations

from collections import defaultdict

from django.db import connection
from django.db.models import Count, Q

from audit.chain import chain_head
from jobs.models import ApprovalRequest, Cluster, InFlightCall, Job
from notifications.models import Notice
from ops.counters import (
    APPROVALS,
    CALL_SECONDS,
    CALLS_IN_BUCKET,
    JOBS_ENDED,
    OUTAGES,
    REAPED,
    RETRIED,
    SIGNIN_FAILURES,
    counter_values,
)
from ops.heartbeats import ALIVE_SECONDS, workers_alive
from ops.receivers import APPROVAL_OUTCOMES, BUCKETS, REAP_REASONS

Sample = tuple[str, dict[str, str], float]
HISTOGRAM = "tmsdash_call_duration_seconds"


def metrics_text() -> str:
    with connection.cursor() as cursor:
        head = chain_head(cursor)
    families = [
        ("tmsdash_jobs_total", "counter", "Jobs ended, by status, cluster and action.", _jobs()),
        (
            "tmsdash_jobs_queued",
            "gauge",
            "Jobs not started yet, those waiting for their cluster included.",
            [("", {}, Job.objects.in_progress().filter(started_at__isnull=True).count())],
        ),
        (
            "tmsdash_calls_in_flight",
            "gauge",
            "Calls to each active cluster in flight now, from all workers.",
            _calls_in_flight(),
        ),
        (
            HISTOGRAM,
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
            APPROVALS,
            "counter",
            "Approval requests made (requested) and ended: approved, denied, expired, withdrawn.",
            _approvals(),
        ),
        (
            "tmsdash_approvals_pending",
            "gauge",
            "Approval requests waiting for their decision.",
            [
                (
                    "",
                    {},
                    ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING).count(),
                )
            ],
        ),
        (
            "tmsdash_signin_failures_total",
            "counter",
            "Failed sign-ins, refused ones during a lock-out included.",
            [("", {}, sum(value for _, value in counter_values(SIGNIN_FAILURES)))],
        ),
        (
            OUTAGES,
            "counter",
            "Database outages that a worker or housekeeping process rode out, counted once "
            "the database was back.",
            [("", {}, sum(value for _, value in counter_values(OUTAGES)))],
        ),
        (
            RETRIED,
            "counter",
            "Database work tried again during those outages (claims, results, task rows, passes).",
            [("", {}, sum(value for _, value in counter_values(RETRIED)))],
        ),
        (
            "tmsdash_notices",
            "gauge",
            "Notices waiting for delivery (PENDING), held for a digest (HELD) and given up "
            "(FAILED), by channel.",
            _notices(),
        ),
        (
            "tmsdash_audit_chain_head_seq",
            "gauge",
            "The place of the last entry of the audit trail's hash chain (verify_audit).",
            [("", {}, head[0])],
        ),
        (
            "tmsdash_audit_chain_head_info",
            "gauge",
            "The head of the audit trail's hash chain, its seq and hash as labels, to publish.",
            [("", {"seq": str(head[0]), "hash": head[1]}, 1)],
        ),
        (
            "tmsdash_workers_alive",
            "gauge",
            f"Workers that sent a heartbeat in the last {ALIVE_SECONDS} seconds.",
            [("", {}, workers_alive())],
        ),
    ]
    lines = []
    for name, kind, help_text, samples in families:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        lines += [_line(name + suffix, labels, value) for suffix, labels, value in samples]
    return "\n".join(lines) + "\n"


def _notices() -> list[Sample]:
    states = [Notice.State.PENDING, Notice.State.HELD, Notice.State.FAILED]
    counted = {
        (row["channel"], row["state"]): row["n"]
        for row in Notice.objects.filter(state__in=states)
        .order_by()
        .values("channel", "state")
        .annotate(n=Count("pk"))
    }
    return [
        ("", {"channel": channel, "state": state}, counted.get((channel, state), 0))
        for channel in Notice.Channel.values
        for state in states
    ]


def _jobs() -> list[Sample]:
    return [
        ("", {name: labels[name] for name in ("status", "cluster", "action")}, value)
        for labels, value in counter_values(JOBS_ENDED)
    ]


def _calls_in_flight() -> list[Sample]:
    in_flight = dict(
        InFlightCall.objects.values("cluster_id")
        .annotate(n=Count("pk"))
        .values_list("cluster_id", "n")
    )
    clusters = Cluster.objects.filter(Q(is_active=True) | Q(pk__in=in_flight)).order_by("name")
    return [("", {"cluster": c.name}, in_flight.get(c.pk, 0)) for c in clusters]


def _call_durations() -> list[Sample]:
    """Buckets made cumulative, as Prometheus wants, with each series' sum and count."""
    in_bucket: dict[tuple, dict[str, float]] = defaultdict(dict)
    for labels, value in counter_values(CALLS_IN_BUCKET):
        series = (labels["cluster"], labels["outcome"])
        in_bucket[series][labels["le"]] = value
    seconds = {
        (labels["cluster"], labels["outcome"]): value
        for labels, value in counter_values(CALL_SECONDS)
    }
    samples = []
    for (cluster, outcome), counts in sorted(in_bucket.items()):
        labels = {"cluster": cluster, "outcome": outcome}
        total = 0.0
        for bound in [f"{b:g}" for b in BUCKETS] + ["+Inf"]:
            total += counts.get(bound, 0)
            samples.append(("_bucket", {**labels, "le": bound}, total))
        samples.append(("_sum", labels, seconds.get((cluster, outcome), 0.0)))
        samples.append(("_count", labels, total))
    return samples


def _reaped() -> list[Sample]:
    counted = {labels["reason"]: value for labels, value in counter_values(REAPED)}
    return [("", {"reason": reason}, counted.get(reason, 0)) for reason in REAP_REASONS]


def _approvals() -> list[Sample]:
    counted = {labels["outcome"]: value for labels, value in counter_values(APPROVALS)}
    return [("", {"outcome": outcome}, counted.get(outcome, 0)) for outcome in APPROVAL_OUTCOMES]


def _line(name: str, labels: dict[str, str], value: float) -> str:
    if not labels:
        return f"{name} {_number(value)}"
    text = ",".join(f'{key}="{_escape(str(val))}"' for key, val in labels.items())
    return f"{name}{{{text}}} {_number(value)}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(round(float(value), 6))
