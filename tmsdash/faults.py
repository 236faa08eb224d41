"""Passing database faults: answered 503 with Retry-After, never 500.

While the database refuses work (PostgreSQL restarting or gone, SQLite locked by another process
beyond the busy timeout, a full disk), Django raises OperationalError or InterfaceError. Those
are the faults a caller should simply retry; every other database error (ProgrammingError,
IntegrityError, DataError) is a bug or bad data, and stays a 500. Every exception no view
handled, a middleware's included, reaches tmsdash.views.server_error, which answers these; the
API's too, since api.problems leaves them to Django. The session saved after the view fails as a
400 raised from the fault, which tmsdash.views.bad_request answers so. (With DEBUG on, Django
shows its debug page.)

Nothing is half written: every write the pages and the API make is one transaction in its
service, which the fault rolls back; Django closes a connection left unusable when the request
ends, so the next request opens a fresh one.
"""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("tmsdash.faults")

# A restart or a lock held by another process usually lasts a few seconds.
RETRY_AFTER_SECONDS = 5
UNAVAILABLE = (
    "The database is not answering for a moment (restarting, busy or out of space). "
    "Nothing was changed. Try again in a few seconds."
)


def database_fault(exc: BaseException | None) -> BaseException | None:
    """The passing database fault behind `exc`, if any: `exc` itself, or what it was raised
    from or while handling. Django's database sessions turn a failed save into a 400
    (SessionInterrupted, "the session was deleted") raised while handling the fault."""
    while exc is not None:
        if isinstance(exc, OperationalError | InterfaceError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def unavailable(request: HttpRequest, exc: BaseException, response: HttpResponse) -> HttpResponse:
    """Log the fault once, as a warning, and mark `response` (a 503) as the answer to it.

    The log line names the request and the database's message, never the request's body or
    headers, where tokens travel. Django would log the 503 again as an error with the
    traceback: the response is marked as logged, as Django marks those it logged itself.
    """
    message = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    logger.warning(
        "database fault: %s %s answered 503: %s: %s",
        request.method,
        request.path,
        type(exc).__name__,
        message,
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response._has_been_logged = True
    return response
