"""The admin for notifications: webhook endpoints registered and changed through
notifications.endpoints, and the outbox of notices read-only, each with its attempts.

An endpoint's secret is write-only: typed into a password box that is never filled back in, and
shown nowhere, only whether one is set and can be read. Its URL, the credential of a Slack or
Teams webhook, is write-only too: shown as its destination (scheme and host) only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin import actions as admin_actions
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.deletion import ProtectedError
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.views.decorators.debug import sensitive_post_parameters

from audit.services import client_ip
from lib.admin import CheckedModelAdmin, LargeTableAdmin, history_refusal, json_block
from lib.uuids import uuid_prefix_bounds
from notifications.endpoint_form import WebhookEndpointForm, test_message
from notifications.endpoint_test import endpoint_send_test
from notifications.endpoints import endpoint_delete, endpoint_save
from notifications.models import Notice, NoticeAttempt, WebhookEndpoint
from notifications.resend import ENDED, notices_resend

State = Notice.State


def notices_url(**filters: Any) -> str:
    return reverse("admin:notifications_notice_changelist") + "?" + urlencode(filters)


def _notice_count(state: str) -> Coalesce:
    counted = (
        Notice.objects.filter(endpoint=OuterRef("pk"), state=state)
        .order_by()
        .values("endpoint")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(CheckedModelAdmin):
    form = WebhookEndpointForm
    list_display = (
        "endpoint",
        "destination",
        "events_shown",
        "clusters_shown",
        "is_active",
        "format",
        "secret_state",
        "failed_notices",
        "pending_notices",
    )
    list_filter = ("is_active", "format")
    # Only by name: the URL is stored encrypted.
    search_fields = ("name",)
    readonly_fields = (
        "destination",
        "secret_state",
        "routing_key_state",
        "created_at",
        "updated_at",
    )
    change_form_template = "admin/notifications/webhookendpoint/change_form.html"
    actions = ("delete_selected",)

    def get_fieldsets(self, request: HttpRequest, obj: WebhookEndpoint | None = None) -> list:
        # Shown read-only (to whoever may only view), the secret field would show its value.
        if obj is None:
            where, signing = ("url",), ("secret", "routing_key")
        elif self.has_change_permission(request, obj):
            where = ("destination", "url")
            signing = ("secret", "secret_state", "routing_key", "routing_key_state")
        else:
            where, signing = ("destination",), ("secret_state", "routing_key_state")
        fieldsets = [
            (None, {"fields": ("name", *where, "format", "is_active")}),
            ("Signing", {"fields": signing}),
            ("Notices", {"fields": ("events", "clusters")}),
        ]
        if obj is not None:
            fieldsets.append(("Times", {"fields": ("created_at", "updated_at")}))
        return fieldsets

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .prefetch_related("clusters")
            .annotate(
                failed_count=_notice_count(State.FAILED),
                pending_count=_notice_count(State.PENDING),
            )
        )

    @method_decorator(sensitive_post_parameters("url", "secret", "routing_key"))
    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        # Error reports leave the typed URL and secrets out.
        return super().changeform_view(request, object_id, form_url, extra_context)

    @admin.display(description="endpoint", ordering="name")
    def endpoint(self, endpoint: WebhookEndpoint) -> str:
        return str(endpoint)

    @admin.display(description="posts to")
    def destination(self, endpoint: WebhookEndpoint) -> str:
        return endpoint.url_shown

    @admin.display(description="events")
    def events_shown(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(endpoint.events)

    @admin.display(description="clusters")
    def clusters_shown(self, endpoint: WebhookEndpoint) -> str:
        return ", ".join(sorted(c.name for c in endpoint.clusters.all())) or "every cluster"

    @admin.display(description="secret")
    def secret_state(self, endpoint: WebhookEndpoint) -> SafeString | str:
        if endpoint.secret is None:
            return format_html(
                "<strong>{}</strong>", "cannot be read (the encryption key changed): set a new one"
            )
        return "set (never shown)"

    @admin.display(description="PagerDuty routing key")
    def routing_key_state(self, endpoint: WebhookEndpoint) -> SafeString | str:
        if endpoint.routing_key is None:
            return format_html(
                "<strong>{}</strong>", "cannot be read (the encryption key changed): set a new one"
            )
        return "set (never shown)" if endpoint.routing_key else "none"

    def get_urls(self) -> list:
        test = path(
            "<path:object_id>/send-test/",
            self.admin_site.admin_view(self.send_test_view),
            name="notifications_webhookendpoint_send_test",
        )
        return [test, *super().get_urls()]

    def send_test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST: send the endpoint a test message through the outbox at once, and say what it
        answered in a message on its change page."""
        endpoint = self.get_object(request, unquote(object_id))
        if endpoint is None or not self.has_change_permission(request, endpoint):
            raise PermissionDenied
        change = HttpResponseRedirect(
            reverse("admin:notifications_webhookendpoint_change", args=[endpoint.pk])
        )
        if request.method != "POST":
            return change
        result = endpoint_send_test(
            endpoint=endpoint, actor=request.user, ip_address=client_ip(request)
        )
        self.message_user(
            request, test_message(result), messages.SUCCESS if result.ok else messages.ERROR
        )
        return change

    @admin.display(description="failed notices", ordering="failed_count")
    def failed_notices(self, endpoint: WebhookEndpoint) -> SafeString:
        return self._notices_link(endpoint, State.FAILED, endpoint.failed_count)

    @admin.display(description="pending notices", ordering="pending_count")
    def pending_notices(self, endpoint: WebhookEndpoint) -> SafeString:
        return self._notices_link(endpoint, State.PENDING, endpoint.pending_count)

    def _notices_link(self, endpoint: WebhookEndpoint, state: str, count: int) -> SafeString:
        url = notices_url(endpoint__id__exact=endpoint.pk, state__exact=state)
        return format_html('<a href="{}">{}</a>', url, count)

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        endpoint_save(
            endpoint=obj,
            clusters=form.cleaned_data["clusters"],
            actor=request.user,
            ip_address=client_ip(request),
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: list, change: bool) -> None:
        # endpoint_save set the clusters, under the same audit entry as the rest.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        endpoint_delete(endpoint=obj, actor=request.user, ip_address=client_ip(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for endpoint in queryset:
            endpoint_delete(endpoint=endpoint, actor=request.user, ip_address=client_ip(request))

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict | None = None
    ) -> HttpResponse:
        # Notice.endpoint is PROTECT: instead of Django's page listing every protected notice,
        # say what to do and go back to the endpoint. A notice written between this check and
        # the delete makes the delete raise, which rolls it back: the same answer.
        endpoint = self.get_object(request, unquote(object_id))
        if endpoint is None or not self.has_delete_permission(request, endpoint):
            return super().delete_view(request, object_id, extra_context)
        change = HttpResponseRedirect(
            reverse("admin:notifications_webhookendpoint_change", args=[endpoint.pk])
        )
        if endpoint.notices.exists():
            self.message_user(
                request,
                history_refusal([str(endpoint)], kind="webhook endpoint", history="notices"),
                messages.ERROR,
            )
            return change
        try:
            return super().delete_view(request, object_id, extra_context)
        except ProtectedError:
            self.message_user(
                request,
                history_refusal([str(endpoint)], kind="webhook endpoint", history="notices"),
                messages.ERROR,
            )
            return change

    @admin.action(description="Delete selected webhook endpoints", permissions=["delete"])
    def delete_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        # Replaces Django's action of the same name, which would list every protected notice.
        in_use = [
            str(endpoint)
            for endpoint in queryset.filter(Exists(Notice.objects.filter(endpoint=OuterRef("pk"))))
        ]
        if in_use:
            self.message_user(
                request,
                history_refusal(in_use, kind="webhook endpoint", history="notices"),
                messages.ERROR,
            )
            return None
        try:
            # All or none, and Django's log of the deletions with them: one endpoint refused (a
            # notice written since the check above) keeps the others.
            with transaction.atomic():
                return admin_actions.delete_selected(self, request, queryset)
        except ProtectedError:
            self.message_user(
                request,
                history_refusal(
                    [str(e) for e in queryset], kind="webhook endpoint", history="notices"
                ),
                messages.ERROR,
            )
            return None


class NoticeAttemptInline(admin.TabularInline):
    model = NoticeAttempt
    fields = ("started_at", "duration", "delivered", "http", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "attempts"

    @admin.display(description="duration")
    def duration(self, attempt: NoticeAttempt) -> str:
        return f"{attempt.duration_ms} ms"

    @admin.display(description="delivered", boolean=True)
    def delivered(self, attempt: NoticeAttempt) -> bool:
        return attempt.ok

    @admin.display(description="HTTP status")
    def http(self, attempt: NoticeAttempt) -> int | str:
        # No answer, or an e-mail: a read-only callable would show None as "None".
        if attempt.http_status is None:
            return self.get_empty_value_display()
        return attempt.http_status

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The attempts are part of the notice: whoever sees it sees them.
        return request.user.has_perm("notifications.view_notice")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Notice)
class NoticeAdmin(LargeTableAdmin):
    list_display = (
        "event",
        "channel",
        "recipient",
        "state",
        "attempts",
        "created_at",
        "next_attempt",
        "error_short",
    )
    list_select_related = ("user", "endpoint")
    list_filter = ("state", "channel", "event", "endpoint")
    sortable_by = ("created_at",)
    # These only make the search box appear: get_search_results does the searching.
    search_fields = ("event_id", "job__id")
    search_help_text = (
        "An event id or a job id, or its beginning. Several words: notices matching all of them."
    )
    actions = ("deliver_again",)
    # Actions apply to the ticked rows; no "select all N" across pages.
    actions_selection_counter = False
    inlines = (NoticeAttemptInline,)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "event",
                    "event_id",
                    "state",
                    "channel",
                    "recipient",
                    "job",
                    "batch_id",
                    "digest",
                    "held_notices",
                    "attempts",
                    "last_error",
                )
            },
        ),
        (
            "Times",
            {
                "fields": (
                    "created_at",
                    "next_attempt_at",
                    "claimed_at",
                    "lease_until",
                    "finished_at",
                )
            },
        ),
        ("Payload", {"fields": ("payload_json",)}),
    )
    readonly_fields = ("recipient", "held_notices", "payload_json")

    @admin.display(description="recipient")
    def recipient(self, notice: Notice) -> SafeString:
        if notice.endpoint_id is not None:
            url = reverse("admin:notifications_webhookendpoint_change", args=[notice.endpoint_id])
            return format_html('<a href="{}">{}</a>', url, notice.endpoint)
        return format_html("{}", notice.user.get_username())

    @admin.display(description="next attempt")
    def next_attempt(self, notice: Notice) -> datetime | None:
        # Only a notice still to be sent has one.
        return notice.next_attempt_at if notice.state == State.PENDING else None

    @admin.display(description="last error")
    def error_short(self, notice: Notice) -> SafeString | str:
        if not notice.last_error:
            return ""
        return format_html(
            '<span title="{}">{}</span>', notice.last_error, Truncator(notice.last_error).chars(60)
        )

    @admin.display(description="held notices")
    def held_notices(self, notice: Notice) -> SafeString | str:
        if notice.event != Notice.DIGEST:
            return ""
        count = notice.held.count()
        return format_html('<a href="{}">{} notice(s)</a>', notices_url(digest=notice.pk), count)

    @admin.display(description="payload")
    def payload_json(self, notice: Notice) -> SafeString:
        return json_block(notice.payload)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        for term in search_term.split():
            bounds = uuid_prefix_bounds(term)
            if bounds is None:
                return queryset.none(), False
            low, high = bounds
            # A foreign key has no range lookup; the two bounds use the job index all the same.
            by_job = Q(job_id__gte=low, job_id__lte=high)
            queryset = queryset.filter(Q(event_id__range=bounds) | by_job)
        return queryset, False

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("notifications.change_notice")

    @admin.action(description="Deliver again (failed or dropped notices)", permissions=["resend"])
    def deliver_again(self, request: HttpRequest, queryset: QuerySet) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        left = queryset.exclude(state__in=ENDED).count()
        in_digest = queryset.filter(state__in=ENDED, digest__isnull=False).exists()
        queued = notices_resend(notice_ids=ids, actor=request.user, ip_address=client_ip(request))
        message = f"Queued {queued} notice(s) to be delivered again."
        if in_digest:
            message += " Notices held for a digest go again in their digest."
        if left:
            message += f" {left} selected notice(s) had not failed and were left as they are."
        self.message_user(request, message, messages.SUCCESS if queued else messages.WARNING)
