"""The admin for jobs: failed jobs first, job history read-only, tables of millions; clusters
(a cluster's stored credential written on its page, never shown back) in jobs.admin.clusters,
run grants in jobs.admin.grants, approval rules and requests in jobs.admin.approvals, change
freezes and maintenance windows in jobs.admin.freezes.

The job lists are built on lib.admin's large-table base (a capped count, no facets, a cheap date
hierarchy); on top of it every filter here matches an index whose order is the list's order
(newest first), and only the indexed "created" column is sortable.
"""

from __future__ import annotations

import datetime as dt
from functools import reduce
from http import HTTPStatus
from operator import or_
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.translation import gettext as _

from jobs.admin.approvals import ApprovalRequestAdmin as ApprovalRequestAdmin
from jobs.admin.approvals import ApprovalRuleAdmin as ApprovalRuleAdmin
from jobs.admin.clusters import ClusterAdmin as ClusterAdmin
from jobs.admin.freezes import ChangeFreezeAdmin as ChangeFreezeAdmin
from jobs.admin.freezes import MaintenanceWindowAdmin as MaintenanceWindowAdmin
from jobs.admin.grants import RunGrantAdmin as RunGrantAdmin
from jobs.badges import status_badge
from jobs.csvexport import jobs_csv_response
from jobs.models import FailedJob, Job, JobCustomer
from lib.admin import LargeTableAdmin, json_block
from lib.numbers import NotANumber, whole_number
from lib.uuids import uuid_prefix_bounds

# The codes offered by the HTTP status filter. Each is an equality on an indexed column, so the
# list stays in index order; ranges such as "all 5xx" would make the database sort every match.
# Any other code can still be asked for in the address, e.g. ?http_status=418.
HTTP_STATUS_CHOICES = (200, 201, 202, 204, 400, 401, 403, 404, 408, 409, 422, 429, *range(500, 505))
NO_ANSWER = "none"
CUSTOMERS_SHOWN = 100
# A customer found in more jobs than this is searched by subquery instead of a list of ids
# (SQLite accepts at most 32,766 parameters in one statement).
CID_SEARCH_ID_LIST_MAX = 5_000


class OperatorFilter(admin.RelatedFieldListFilter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.title = "operator"


class HttpStatusFilter(admin.SimpleListFilter):
    title = "HTTP status"
    parameter_name = "http_status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        codes = [(str(code), f"{code} {HTTPStatus(code).phrase}") for code in HTTP_STATUS_CHOICES]
        return [*codes, (NO_ANSWER, "No answer")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        if value == NO_ANSWER:
            return queryset.filter(http_status__isnull=True)
        try:
            return queryset.filter(http_status=whole_number(value, minimum=100, maximum=999))
        except NotANumber:
            raise admin.options.IncorrectLookupParameters(
                f"Not an HTTP status: {value!r}"
            ) from None


class FailedStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple]:
        return [(s.value, s.label) for s in (Job.Status.FAILED, Job.Status.UNKNOWN)]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(status=self.value()) if self.value() else queryset


@admin.register(Job)
class JobAdmin(LargeTableAdmin):
    list_display = (
        "short_id",
        "ui_page",
        "operator",
        "action_name",
        "cluster_name",
        "status_badge",
        "http_status",
        "error_short",
        "customers",
        "created",
    )
    list_display_links = ("short_id",)
    list_select_related = ("user", "cluster")
    list_filter = (
        "status",
        "action",
        "cluster",
        HttpStatusFilter,
        ("user", OperatorFilter),
        ("created_at", admin.DateFieldListFilter),
    )
    date_hierarchy = "created_at"
    # Sorting by any other column would sort the whole table.
    sortable_by = ("created",)
    # These only make the search box appear: get_search_results does the searching.
    search_fields = ("id", "user__username", "customers__cid", "legacy_id")
    search_help_text = (
        "A job id or its beginning, an operator's username, a customer ID, or a legacy job id "
        "(exact). Several words: jobs matching all of them."
    )
    actions = ("export_csv",)

    class Media:
        # The status badge's colours, the same as in the operator UI.
        css = {"all": ["css/badges.css"]}

    # Actions apply to the ticked rows; no "select all N" across pages.
    actions_selection_counter = False
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "id",
                    "ui_page",
                    "status_badge",
                    "action_name",
                    "user",
                    "cluster",
                    "cluster_url",
                    "action_path",
                    "timeout_seconds",
                    "verify_tls",
                    "http_status",
                    "error_message",
                    "response_summary",
                )
            },
        ),
        ("Customers", {"fields": ("customer_count", "customer_list")}),
        (
            "The cluster's answer, as received",
            {
                "fields": (
                    "cluster_answer_status",
                    "cluster_answer_content_type",
                    "cluster_answer_body",
                    "cluster_answer_truncated",
                )
            },
        ),
        (
            "Times",
            {
                "fields": (
                    "created_at",
                    "waiting_since",
                    "waiting_task_id",
                    "waiting_for",
                    "waiting_until",
                    "started_at",
                    "finished_at",
                    "updated_at",
                )
            },
        ),
        (
            "Request",
            {
                "fields": (
                    "request_json",
                    "idempotency_key",
                    "submission_digest",
                    "token_fingerprint",
                    "uses_stored_credential",
                )
            },
        ),
        (
            "Origin",
            {
                "fields": (
                    "batch_id",
                    "batch_seq",
                    "retry_of",
                    "approval",
                    "freeze_override_reason",
                    "freeze_overridden_by",
                    "legacy_id",
                    "legacy_action_name",
                )
            },
        ),
    )
    readonly_fields = (
        "ui_page",
        "status_badge",
        "action_name",
        "customer_list",
        "request_json",
    )

    def action_checkbox(self, job: Job) -> SafeString:
        # Django's markup, written at once: Django renders a form widget through the template
        # engine for each row, a third of the rows' rendering on a page of 100 jobs.
        label = format_html(_("Select this object for an action - {}"), str(job))
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            ACTION_CHECKBOX_NAME,
            job.pk,
            label,
        )

    @admin.display(description="job id")
    def short_id(self, job: Job) -> SafeString:
        return format_html('<code title="{}">{}</code>', job.pk, str(job.pk)[:8])

    @admin.display(description="operator UI")
    def ui_page(self, job: Job) -> SafeString:
        # The page where an operator can retry the job with a new token.
        return format_html('<a href="{}">job page</a>', reverse("job_detail", args=[job.pk]))

    @admin.display(description="operator")
    def operator(self, job: Job) -> str:
        return job.user.get_username()

    @admin.display(description="action")
    def action_name(self, job: Job) -> str:
        return job.action_label

    @admin.display(description="cluster")
    def cluster_name(self, job: Job) -> str:
        return job.cluster.name if job.cluster else job.cluster_url

    @admin.display(description="status")
    def status_badge(self, job: Job) -> SafeString:
        return status_badge(job)

    @admin.display(description="error")
    def error_short(self, job: Job) -> SafeString | str:
        if not job.error_message:
            return ""
        return format_html(
            '<span title="{}">{}</span>',
            job.error_message,
            Truncator(job.error_message).chars(60),
        )

    @admin.display(description="customers")
    def customers(self, job: Job) -> int:
        return job.customer_count

    @admin.display(description="created", ordering="created_at")
    def created(self, job: Job) -> dt.datetime:
        return job.created_at

    @admin.display(description=f"customers (first {CUSTOMERS_SHOWN})")
    def customer_list(self, job: Job) -> SafeString:
        # One row more than shown tells whether there are more, without counting them.
        rows = list(
            job.customers.order_by("cid").values_list("cid", "outcome", "message")[
                : CUSTOMERS_SHOWN + 1
            ]
        )
        table = format_html(
            "<table><thead><tr><th>customer ID</th><th>outcome</th><th>message</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (cid, outcome or "", message or "")
                    for cid, outcome, message in rows[:CUSTOMERS_SHOWN]
                ),
            ),
        )
        if len(rows) <= CUSTOMERS_SHOWN:
            return table
        url = reverse("admin:jobs_jobcustomer_changelist") + "?" + urlencode({"job": job.pk})
        return format_html(
            '{}<p><a href="{}">All {} customers of this job</a></p>', table, url, job.customer_count
        )

    @admin.display(description="request payload")
    def request_json(self, job: Job) -> SafeString:
        return json_block(job.request_payload)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        for term in search_term.split():
            queryset = queryset.filter(job_search_q(term))
        return queryset, False

    @admin.action(description="Export the selected jobs as CSV", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet) -> StreamingHttpResponse:
        return jobs_csv_response(queryset.select_related("user", "cluster").iterator(2_000))


def job_search_q(term: str) -> Q:
    """Jobs that one search word finds: by id or its beginning, operator, customer, legacy id.

    Each kind of match is looked up first on its own index, and only the kinds that find
    something go into the list's query. A single indexed condition is read in the list's order,
    one page at a time; an OR of several makes the database collect and sort every match, and a
    subquery inside an OR would make PostgreSQL read every job.
    """
    conditions = []
    if Job.objects.filter(legacy_id=term).exists():
        conditions.append(Q(legacy_id=term))
    bounds = uuid_prefix_bounds(term)
    if bounds and Job.objects.filter(pk__range=bounds).exists():
        conditions.append(Q(pk__range=bounds))
    user_ids = list(get_user_model().objects.filter(username=term).values_list("pk", flat=True))
    if user_ids:
        conditions.append(Q(user_id__in=user_ids))
    customer_jobs = JobCustomer.objects.filter(cid=term).values_list("job_id", flat=True)
    job_ids = list(customer_jobs[: CID_SEARCH_ID_LIST_MAX + 1])
    if len(job_ids) > CID_SEARCH_ID_LIST_MAX:
        conditions.append(Q(pk__in=customer_jobs))
    elif job_ids:
        conditions.append(Q(pk__in=job_ids))
    if not conditions:
        return Q(pk__in=[])
    return reduce(or_, conditions)


@admin.register(FailedJob)
class FailedJobAdmin(JobAdmin):
    list_filter = (FailedStatusFilter, *JobAdmin.list_filter[1:])

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).failed()

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A proxy has permissions of its own; seeing failed jobs is seeing jobs.
        return request.user.has_perm("jobs.view_job")


@admin.register(JobCustomer)
class JobCustomerAdmin(LargeTableAdmin):
    """The customers of a job, linked from the job's page (?job=<id>)."""

    list_display = ("cid", "outcome", "message_short", "job_link")
    # The unique (job, cid) index gives this order without a sort.
    ordering = ("job", "cid")
    sortable_by = ()
    search_fields = ("cid",)
    search_help_text = "A customer ID (exact)."

    def has_module_permission(self, request: HttpRequest) -> bool:
        # Reached from a job's page; the index lists jobs, not millions of customer rows.
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        terms = search_term.split()
        return (queryset.filter(cid__in=terms) if terms else queryset), False

    @admin.display(description="message")
    def message_short(self, customer: JobCustomer) -> SafeString | str:
        if not customer.message:
            return ""
        return format_html(
            '<span title="{}">{}</span>', customer.message, Truncator(customer.message).chars(60)
        )

    @admin.display(description="job")
    def job_link(self, customer: JobCustomer) -> SafeString:
        url = reverse("admin:jobs_job_change", args=[customer.job_id])
        return format_html('<a href="{}"><code>{}</code></a>', url, customer.job_id)
