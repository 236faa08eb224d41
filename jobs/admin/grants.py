"""The admin of run grants: who may run which actions on which clusters.

A grant is added or deleted, never changed in place (delete it and add the one meant): both go
through jobs.services, so that each is audited with who did it and from where.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from audit.services import client_ip
from jobs.models import RunGrant
from jobs.services import DuplicateGrant, run_grant_create, run_grant_delete
from lib.admin import CheckedModelAdmin


@admin.register(RunGrant)
class RunGrantAdmin(CheckedModelAdmin):
    list_display = (
        "grantee",
        "action_shown",
        "cluster_shown",
        "may_use_stored_credential",
        "created_at",
    )
    list_select_related = ("group", "user", "cluster")
    list_filter = ("group", "cluster", "action", "may_use_stored_credential")
    search_fields = ("group__name", "user__username", "cluster__name")
    fields = ("group", "user", "cluster", "action", "may_use_stored_credential")
    raw_id_fields = ("user",)
    actions = ("delete_selected",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="group or user")
    def grantee(self, grant: RunGrant) -> str:
        return f"group {grant.group}" if grant.group_id else f"user {grant.user}"

    @admin.display(description="action", ordering="action")
    def action_shown(self, grant: RunGrant) -> str:
        return grant.get_action_display() if grant.action else "any action"

    @admin.display(description="cluster", ordering="cluster__name")
    def cluster_shown(self, grant: RunGrant) -> str:
        return grant.cluster.name if grant.cluster_id else "any cluster"

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DuplicateGrant as exc:
            # Someone made the same grant between the form's check and the save.
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:jobs_rungrant_changelist"))

    def save_model(self, request: HttpRequest, obj: RunGrant, form: Any, change: bool) -> None:
        # The form checked the grant (one grantee, not a duplicate); the service writes it
        # with its audit entry.
        grant = run_grant_create(
            group=obj.group,
            user=obj.user,
            cluster=obj.cluster,
            action=obj.action,
            may_use_stored_credential=obj.may_use_stored_credential,
            actor=request.user,
            ip_address=client_ip(request),
        )
        obj.pk, obj.created_at = grant.pk, grant.created_at

    def delete_model(self, request: HttpRequest, obj: RunGrant) -> None:
        run_grant_delete(grant=obj, actor=request.user, ip_address=client_ip(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for grant in queryset.select_related("group", "user", "cluster"):
            run_grant_delete(grant=grant, actor=request.user, ip_address=client_ip(request))
