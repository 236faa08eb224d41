"""The admin of approvals: rules are added and removed (never changed in place) through
jobs.services, audited; requests are history, listed pending first."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Case, F, IntegerField, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from audit.services import client_ip
from jobs.models import ApprovalRequest, ApprovalRule
from jobs.services import DuplicateRule, approval_rule_create, approval_rule_delete
from lib.admin import CheckedModelAdmin, ReadOnlyAdmin


@admin.register(ApprovalRule)
class ApprovalRuleAdmin(CheckedModelAdmin):
    list_display = (
        "id",
        "cluster",
        "action",
        "min_customers",
        "approvers_group",
        "approvers_required",
        "per_run",
        "ttl_seconds",
        "created_at",
    )
    list_select_related = ("cluster", "approvers_group")
    fields = (
        "cluster",
        "action",
        "min_customers",
        "approvers_group",
        "approvers_required",
        "per_run",
        "ttl_seconds",
    )
    actions = ("delete_selected",)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Replaced, not changed: the audit trail then holds both rules.
        return obj is None and super().has_change_permission(request, obj)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DuplicateRule as exc:
            # The service refuses a rule equal to one that exists; the form cannot see that.
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:jobs_approvalrule_changelist"))

    def save_model(self, request: HttpRequest, obj: ApprovalRule, form: Any, change: bool) -> None:
        approval_rule_create(rule=obj, actor=request.user, ip_address=client_ip(request))

    def delete_model(self, request: HttpRequest, obj: ApprovalRule) -> None:
        approval_rule_delete(rule=obj, actor=request.user, ip_address=client_ip(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for rule in queryset:
            approval_rule_delete(rule=rule, actor=request.user, ip_address=client_ip(request))


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(ReadOnlyAdmin):
    """What waits for approval first, soonest to expire first; then the rest, newest first."""

    list_display = (
        "id",
        "status",
        "submitter",
        "approvers_group",
        "approvers_required",
        "created_at",
        "expires_at",
        "decided_at",
    )
    list_filter = ("status",)
    list_select_related = ("submitter", "approvers_group")
    search_fields = ("submitter__username",)

    def get_ordering(self, request: HttpRequest) -> list:
        pending_first = Case(
            When(status=ApprovalRequest.Status.PENDING, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        # Only pending requests are ordered by their deadline.
        deadline = Case(When(status=ApprovalRequest.Status.PENDING, then=F("expires_at")))
        return [pending_first.asc(), deadline.asc(nulls_last=True), "-created_at"]
