"""Per-token rate limits, separate for submits (POST) and reads, counted in the database in
one-minute windows so that they hold across web processes and hosts. Refused: 429 with
Retry-After (the seconds to the next window)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import BaseThrottle

from api.models import ApiRateWindow

WINDOW = timedelta(minutes=1)


@cache
def _increment_sql() -> str:
    """One more request in a window that has room, as plain SQL written once from the model:
    the ORM's building of this UPDATE cost several times its running, on every request."""
    q = connection.ops.quote_name
    meta = ApiRateWindow._meta
    count, token, scope, start = (
        q(meta.get_field(name).column) for name in ("count", "token", "scope", "window_start")
    )
    return (
        f"UPDATE {q(meta.db_table)} SET {count} = {count} + 1 "  # noqa: S608
        f"WHERE {token} = %s AND {scope} = %s AND {start} = %s AND {count} < %s"
    )


def _increment(token_id: int, scope: str, start: datetime, limit: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            _increment_sql(),
            [token_id, scope, connection.ops.adapt_datetimefield_value(start), limit],
        )
        return cursor.rowcount == 1


def rate_take(token_id: int, scope: str, limit: int, now: datetime | None = None) -> float:
    """Count one request of `scope` for the token in the current minute: 0 when it is within
    `limit`, else the seconds until the next minute. Exact under concurrency: the increment
    is one conditional UPDATE, and the window's row is created once (its unique constraint)."""
    now = now or timezone.now()
    start = now.replace(second=0, microsecond=0)
    window = ApiRateWindow.objects.filter(token_id=token_id, scope=scope, window_start=start)
    for _attempt in range(3):
        if _increment(token_id, scope, start, limit):
            return 0
        if window.filter(count__gte=limit).exists():
            return max(math.ceil((start + WINDOW - now).total_seconds()), 1)
        try:
            with transaction.atomic():
                ApiRateWindow.objects.create(
                    token_id=token_id, scope=scope, window_start=start, count=1
                )
            return 0
        except IntegrityError:
            continue
    return max(math.ceil((start + WINDOW - now).total_seconds()), 1)


def rate_prune(now: datetime | None = None) -> int:
    """Forget the windows before the current one; returns how many."""
    now = now or timezone.now()
    deleted, _ = ApiRateWindow.objects.filter(window_start__lt=now - WINDOW).delete()
    return deleted


class TokenRateThrottle(BaseThrottle):
    """TMS_API_SUBMITS_PER_MINUTE for POSTs, TMS_API_READS_PER_MINUTE for reads, per token."""

    def allow_request(self, request, view) -> bool:
        token = request.auth
        if token is None:
            return True
        if request.method in SAFE_METHODS:
            scope, limit = "read", settings.TMS_API_READS_PER_MINUTE
        else:
            scope, limit = "submit", settings.TMS_API_SUBMITS_PER_MINUTE
        self.seconds = rate_take(token.pk, scope, limit)
        return self.seconds == 0

    def wait(self) -> float:
        return self.seconds
