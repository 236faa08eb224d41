"""Middleware of the whole dashboard."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url

from audit.services import client_ip

request_logger = logging.getLogger("tmsdash.requests")


class RequestLogMiddleware:
    """One log line per request: method, path (never the query string), status, duration and
    the client's address. Nothing of the body, where the operators' tokens travel."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        fields = {
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": duration_ms,
            "client": client_ip(request),
        }
        # A 503 is a passing refusal (the database restarting, a worker missing), not a failure
        # of the dashboard's own: a warning.
        if response.status_code == 503:
            level = logging.WARNING
        else:
            level = logging.ERROR if response.status_code >= 500 else logging.INFO
        request_logger.log(
            level,
            "%(method)s %(path)s %(status)s %(duration_ms)sms %(client)s",
            fields,
            extra=fields,
        )
        return response


class RefuseNulMiddleware:
    """A NUL character in the path or the query string is a bad request (400).

    PostgreSQL text cannot hold NUL, so such a value reaching a query fails there (a 500) while
    SQLite accepts it. No customer ID, job id, filter or search term holds one, so the request
    is refused before any view sees it, the same on both engines. Form fields refuse NUL in
    posted values on their own (Django's ProhibitNullCharactersValidator).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            raise BadRequest("A NUL character in the address.")
        return self.get_response(request)


class SignedOutHtmxMiddleware:
    """An htmx request of a signed-out browser gets 401, not the redirect to the sign-in page.

    A live region's background request follows redirects silently: it would receive the sign-in
    page with 200 and put it where the job was. The 401 lets the page say "You were signed out"
    and keep what it shows.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.htmx
            and isinstance(response, HttpResponseRedirect)
            and urlsplit(response.url).path == resolve_url(settings.LOGIN_URL)
        ):
            return HttpResponse("You were signed out.", status=401, content_type="text/plain")
        return response
