"""Errors as RFC 9457 problem details (`application/problem+json`), with the field errors the
service raised; every refused caller gets the same 401."""

from __future__ import annotations

from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from api.authentication import REFUSED

PROBLEM = "application/problem+json"


def problem(status: int, detail: str, **extra) -> Response:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status}
    body |= {"detail": detail, **extra}
    return Response(body, status=status, content_type=PROBLEM)


def field_messages(errors):
    """DRF's error details as plain JSON: each field's messages as strings, and the errors of
    a list's items keyed by the item's position, as a string ({"cids": {"1": [...]}}), where
    str() of DRF's dict would be Python text."""
    if isinstance(errors, dict):
        return {str(key): field_messages(value) for key, value in errors.items()}
    if isinstance(errors, list):
        return [field_messages(e) if isinstance(e, dict) else str(e) for e in errors]
    return [str(errors)]


def problem_exception_handler(exc, context) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return problem(400, f"The request body is larger than {limit} bytes.")
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            return problem(400, "The request is invalid.", errors=exc.message_dict)
        return problem(400, " ".join(exc.messages))
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        response = problem(401, REFUSED)
        response["WWW-Authenticate"] = 'Bearer realm="tmsdash"'
        return response
    if isinstance(exc, Http404 | exceptions.NotFound):
        return problem(404, "Not found.")
    if isinstance(exc, DjangoPermissionDenied):
        return problem(403, str(exc) or "You may not do this.")
    response = exception_handler(exc, context)
    if response is None:
        return None
    extra = {}
    if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict):
        detail, extra = "The request is invalid.", {"errors": field_messages(exc.detail)}
    elif isinstance(exc, exceptions.ValidationError):
        detail = " ".join(str(e) for e in exc.detail)
    else:
        detail = str(exc.detail)
    answer = problem(response.status_code, detail, **extra)
    for header in ("Retry-After", "WWW-Authenticate", "Allow"):
        if header in response:
            answer[header] = response[header]
    return answer
