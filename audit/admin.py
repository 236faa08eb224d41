"""The audit log in the admin: read-only for everyone, superusers included."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from audit.models import AuditEntry
from lib.admin import LargeTableAdmin, json_block
from lib.uuids import uuid_prefix_bounds


@admin.register(AuditEntry)
class AuditEntryAdmin(LargeTableAdmin):
    list_display = ("created_at", "event_name", "actor_username", "job_link", "ip_address")
    list_filter = ("event", ("created_at", admin.DateFieldListFilter))
    sortable_by = ("created_at",)
    # These only make the search box appear: get_search_results does the searching.
    search_fields = ("job_id", "actor_username")
    search_help_text = "A job id or its beginning, or a username (exact)."
    fields = (
        "created_at",
        "event_name",
        "actor",
        "actor_username",
        "job_link",
        "ip_address",
        "details_json",
    )
    readonly_fields = ("event_name", "job_link", "details_json")

    @admin.display(description="event")
    def event_name(self, entry: AuditEntry) -> str:
        # Imported legacy events are outside the choices: show them as they are.
        return entry.get_event_display()

    @admin.display(description="job")
    def job_link(self, entry: AuditEntry) -> SafeString | str:
        if entry.job_id is None:
            return ""
        url = reverse("admin:jobs_job_change", args=[entry.job_id])
        return format_html('<a href="{}"><code>{}</code></a>', url, entry.job_id)

    @admin.display(description="details")
    def details_json(self, entry: AuditEntry) -> SafeString:
        return json_block(entry.details)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        for term in search_term.split():
            q = Q(actor_username=term)
            bounds = uuid_prefix_bounds(term)
            if bounds:
                q |= Q(job_id__range=bounds)
            queryset = queryset.filter(q)
        return queryset, False
