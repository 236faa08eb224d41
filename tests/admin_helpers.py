"""Small helpers shared by the admin tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone
from model_bakery import baker

from jobs.models import Job
from tests.helpers import make_user


def make_job(**kwargs: Any) -> Job:
    kwargs.setdefault("action", Job.Action.TRANS_BEGIN)
    kwargs.setdefault("cluster_url", "http://127.0.0.1:9100")
    kwargs.setdefault("status", Job.Status.SUCCESS)
    return baker.make(Job, **kwargs)


def make_superuser() -> User:
    """A superuser without a password: hashing one takes a fifth of a second."""
    return User.objects.create_user(username="admin", is_staff=True, is_superuser=True)


def make_auditor(username: str = "aud1") -> User:
    """A staff member of Auditors, as seed_demo makes the demo auditor."""
    return make_user(username, "Auditors", is_staff=True)


def at(year: int, month: int, day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=dt.UTC)


def ago(minutes: int) -> dt.datetime:
    return timezone.now() - dt.timedelta(minutes=minutes)
