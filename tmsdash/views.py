"""The dashboard's own error pages that need more than a template."""

from __future__ import annotations

import sys
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views import defaults

from tmsdash.faults import UNAVAILABLE, database_fault, unavailable

API = "/api/"


def _api_problem(status: int, detail: str) -> JsonResponse:
    """An error of the JSON API as the API answers its own (api.problems)."""
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    return JsonResponse(
        body | {"detail": detail}, status=status, content_type="application/problem+json"
    )


def _unavailable(request: HttpRequest, fault: BaseException) -> HttpResponse:
    """503 with Retry-After: the dashboard's page, rendered without the request so that nothing
    in it (the signed-in user, the messages) reads the database that just failed, or a problem
    for the API."""
    if request.path.startswith(API):
        response = _api_problem(503, UNAVAILABLE)
    else:
        response = HttpResponse(loader.get_template("503.html").render(), status=503)
    return unavailable(request, fault, response)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """400: what was wrong, in the dashboard's page (a problem for the API). Only messages of
    our own are shown. A 400 raised from a database fault is that fault's 503."""
    fault = database_fault(exception)
    if fault is not None:
        return _unavailable(request, fault)
    if request.path.startswith(API):
        return _api_problem(400, "The request is malformed.")
    context = {}
    if isinstance(exception, RequestDataTooBig):
        megabytes = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1024 / 1024
        context["reason"] = (
            f"The form you sent is larger than the dashboard accepts ({megabytes:.1f} MB): at "
            f"most {settings.TMS_MAX_CIDS:,} customer IDs of up to 64 characters. Nothing was "
            "submitted. Split the list, or upload it as a CSV file of at most 5 MB."
        )
    return render(request, "400.html", context, status=400)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404: the dashboard's page, or a problem for the API."""
    if request.path.startswith(API):
        return _api_problem(404, "Not found.")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """500: the dashboard's page, or a problem for the API.

    Django calls this for every exception nothing else handled, a middleware's included, while
    it handles it: a passing database fault (tmsdash.faults) is answered 503 instead.
    """
    fault = database_fault(sys.exc_info()[1])
    if fault is not None:
        return _unavailable(request, fault)
    if request.path.startswith(API):
        return _api_problem(500, "The server failed; the error was logged.")
    return defaults.server_error(request)
