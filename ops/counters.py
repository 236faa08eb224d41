"""Counts kept in the database: one row per counter, incremented in place."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F

from ops.models import Counter

SIGNIN_FAILURES = "signin_failures"


def counter_increment(name: str) -> None:
    if Counter.objects.filter(name=name).update(value=F("value") + 1):
        return
    try:
        with transaction.atomic():
            Counter.objects.create(name=name, value=1)
    except IntegrityError:
        # Another process created it first.
        Counter.objects.filter(name=name).update(value=F("value") + 1)


def counter_value(name: str) -> int:
    return Counter.objects.filter(name=name).values_list("value", flat=True).first() or 0
