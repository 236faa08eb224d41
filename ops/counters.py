"""Counts kept in the database: one row per metric and set of labels, incremented in place,
so that they are exact whichever process or host increments or reads them."""

from __future__ import annotations

import json

from django.db import IntegrityError, transaction
from django.db.models import F

from ops.models import Counter

SIGNIN_FAILURES = "tmsdash_signin_failures_total"
JOBS_ENDED = "tmsdash_jobs_total"
REAPED = "tmsdash_reaped_total"
# Approval requests made, and ended by outcome (ops.receivers).
APPROVALS = "tmsdash_approvals_total"
# The call-duration histogram, kept per bucket (not cumulative, so that a job's end updates one
# row), with its sum; ops.metrics adds the buckets up.
CALLS_IN_BUCKET = "tmsdash_call_duration_seconds_in_bucket"
CALL_SECONDS = "tmsdash_call_duration_seconds_sum"
# Database outages a long-running process (worker, housekeeping) rode out, and the attempts it
# made again during them (lib.outage), counted once the database is back.
OUTAGES = "tmsdash_database_outages_total"
RETRIED = "tmsdash_database_retries_total"


def counter_increment(name: str, labels: dict[str, str] | None = None, amount: float = 1) -> None:
    labels = labels or {}
    key = name + json.dumps(labels, sort_keys=True)
    if Counter.objects.filter(key=key).update(value=F("value") + amount):
        return
    try:
        with transaction.atomic():
            Counter.objects.create(key=key, name=name, labels=labels, value=amount)
    except IntegrityError:
        # Another process created it first.
        Counter.objects.filter(key=key).update(value=F("value") + amount)


def counter_values(name: str) -> list[tuple[dict[str, str], float]]:
    """Every set of labels counted under `name`, with its value, in a stable order."""
    rows = Counter.objects.filter(name=name).order_by("key").values_list("labels", "value")
    return list(rows)
