"""The audit log for auditors (/audit/): newest first, filtered, in keyset pages, each entry's
details expandable, and the filtered entries as a streamed CSV (/audit/export.csv).

For those with audit.view_auditentry (the Auditors group); anyone else signed in gets 403. The
admin's audit list stays as it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from audit.models import AuditEntry
from lib.csvstream import csv_cell, csv_response
from lib.keyset import BadCursor, keyset_page
from ops.audit_filters import AuditFilterForm, changes, other_details

ENTRIES_PER_PAGE = 50
# Rows fetched from the database at a time while the export streams.
EXPORT_CHUNK = 2000
CSV_HEADER = ["id", "created", "event", "event name", "actor", "job id", "IP address", "details"]


def _form(request: HttpRequest) -> AuditFilterForm:
    query = request.GET.copy()
    for cursor in ("older", "newer"):
        query.pop(cursor, None)
    return AuditFilterForm(query or None)


def _entries(form: AuditFilterForm):
    entries = AuditEntry.objects.all()
    return form.filter(entries) if form.is_bound else entries


@never_cache
@require_safe
@login_required
@permission_required("audit.view_auditentry", raise_exception=True)
def audit_log(request: HttpRequest) -> HttpResponse:
    form = _form(request)
    context = {"form": form, "query": form.data.urlencode() if form.is_bound else ""}
    if form.is_bound and not form.is_valid():
        return render(request, "ops/audit_log.html", context, status=400)
    try:
        page = keyset_page(
            _entries(form),
            size=ENTRIES_PER_PAGE,
            older=request.GET.get("older"),
            newer=request.GET.get("newer"),
        )
    except BadCursor as exc:
        context["cursor_error"] = str(exc)
        return render(request, "ops/audit_log.html", context, status=400)
    context["page"] = page
    context["entries"] = [
        {"entry": e, "changes": changes(e.details), "other": other_details(e.details)}
        for e in page.rows
    ]
    return render(request, "ops/audit_log.html", context)


def _csv_rows(entries) -> Iterator[list[str]]:
    yield CSV_HEADER
    for entry in entries:
        yield [
            csv_cell(value)
            for value in (
                entry.pk,
                entry.created_at.isoformat(),
                entry.event,
                entry.get_event_display(),
                entry.actor_username,
                entry.job_id,
                entry.ip_address,
                json.dumps(entry.details, ensure_ascii=False, sort_keys=True, default=str),
            )
        ]


@never_cache
@require_safe
@login_required
@permission_required("audit.view_auditentry", raise_exception=True)
def audit_export(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The filtered entries, newest first, read EXPORT_CHUNK at a time as the response streams,
    so that memory stays bounded at millions of entries."""
    form = _form(request)
    if form.is_bound and not form.is_valid():
        errors = "\n".join(
            f"{form.fields[name].label if name in form.fields else name}: {' '.join(messages)}"
            for name, messages in form.errors.items()
        )
        return HttpResponse(
            f"The filters are not valid, nothing exported.\n{errors}\n",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    entries = _entries(form).order_by("-created_at", "-id").iterator(chunk_size=EXPORT_CHUNK)
    return csv_response(_csv_rows(entries), f"tmsdash-audit-{timezone.now():%Y%m%d-%H%M%S}.csv")
