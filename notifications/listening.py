"""Whether any webhook endpoint is active: a job's end asks it before reading anything for its
notices, and with no endpoint active, no e-mail and no batch, nobody would hear of the end and
nothing more is read.

Asked of the database at every end, in the end's own transaction, through one statement
written once (not built by the ORM each time): an endpoint activated a moment ago, on any
host, hears of the next job that ends. Nothing is kept between ends, so nothing can be stale.
"""

from __future__ import annotations

from django.db import connection

ANY_ACTIVE = "SELECT 1 FROM notifications_webhookendpoint WHERE is_active LIMIT 1"


def endpoints_active() -> bool:
    """Whether a webhook endpoint is active now."""
    with connection.cursor() as cursor:
        cursor.execute(ANY_ACTIVE)
        return cursor.fetchone() is not None
