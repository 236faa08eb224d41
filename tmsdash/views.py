"""The dashboard's own error pages that need more than a template."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """400: what was wrong, in the dashboard's page. Only messages of our own are shown."""
    context = {}
    if isinstance(exception, RequestDataTooBig):
        megabytes = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1024 / 1024
        context["reason"] = (
            f"The form you sent is larger than the dashboard accepts ({megabytes:.1f} MB): at "
            f"most {settings.TMS_MAX_CIDS:,} customer IDs of up to 64 characters. Nothing was "
            "submitted. Split the list, or upload it as a CSV file of at most 5 MB."
        )
    return render(request, "400.html", context, status=400)
