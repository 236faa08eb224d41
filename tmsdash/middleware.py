"""Middleware of the whole dashboard."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse


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
