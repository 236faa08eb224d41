"""How the API shows jobs, their customers, batches and the audit log, and the query
parameters each read endpoint takes.

Only what an operator sees of a job on its page, less the cluster's URL: operators never see
cluster URLs through the API. Nothing here reads or writes a token.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.models import AuditEntry
from jobs.badges import shown_status
from jobs.models import Cluster, Job, JobCustomer
from jobs.services import parse_action
from lib.numbers import NotANumber, decimal_number

SHOWN_STATUSES = [
    "QUEUED",
    "RUNNING",
    "SUCCESS",
    "FAILED",
    "UNKNOWN",
    "CANCELLED",
    "PENDING APPROVAL",
    "DENIED",
    "EXPIRED",
]


def api_jobs(user) -> QuerySet[Job]:
    """The jobs `user` may see, with what JobSerializer reads, so that a page of them costs
    four queries whatever its size (the jobs, their operators, clusters and retries).

    Operators and clusters are prefetched, not joined: asked for the jobs joined with their
    users, SQLite reads the jobs user by user and sorts every one of them before it keeps a
    page (EXPLAIN: SCAN auth_user ... USE TEMP B-TREE FOR ORDER BY); from the jobs table
    alone it reads one page from the index of the order or of the filter."""
    return (
        Job.objects.visible_to(user)
        .prefetch_related("user", "cluster", "retries")
        .defer(
            "request_payload",
            "token_fingerprint",
            "submission_digest",
            "idempotency_key",
            "cluster_answer_body",
        )
    )


class JobSerializer(serializers.ModelSerializer):
    """A job as its page shows it. Read it from `api_jobs(user)`: the list's retries are
    prefetched there."""

    url = serializers.SerializerMethodField(
        help_text="The job's page in the dashboard (on TMS_PUBLIC_URL)."
    )
    status = serializers.ChoiceField(
        choices=Job.Status.choices, help_text="The stored status: IN_PROGRESS until it ends."
    )
    shown_status = serializers.SerializerMethodField(
        help_text="The status in the UI's words: an IN_PROGRESS job is QUEUED until a worker "
        "starts it, then RUNNING."
    )
    error = serializers.CharField(source="error_message")
    summary = serializers.CharField(source="response_summary")
    action = serializers.CharField(source="action_label", help_text="The action's name.")
    cluster = serializers.SerializerMethodField(
        help_text="The cluster's name; null for imported jobs without one."
    )
    operator = serializers.CharField(source="user.username")
    retry_of = serializers.UUIDField(source="retry_of_id", allow_null=True)
    retries = serializers.SerializerMethodField(help_text="The jobs that retried this one.")
    waiting_for = serializers.CharField(
        help_text='What a queued job waits for: "cluster" (a free call slot), "freeze" (a '
        'change freeze to end) or "window" (a maintenance window to open); "" when nothing.'
    )
    waiting_until = serializers.DateTimeField(
        allow_null=True,
        help_text="When the freeze it waits for ends, or the window opens; null when unknown "
        "or not waiting for either.",
    )

    class Meta:
        model = Job
        fields = [
            "id",
            "url",
            "status",
            "shown_status",
            "http_status",
            "error",
            "summary",
            "action",
            "cluster",
            "operator",
            "customer_count",
            "created_at",
            "started_at",
            "finished_at",
            "retry_of",
            "retries",
            "batch_id",
            "batch_seq",
            "waiting_for",
            "waiting_until",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.URLField())
    def get_url(self, job: Job) -> str:
        return settings.TMS_PUBLIC_URL + reverse("job_detail", args=[job.pk])

    @extend_schema_field(serializers.ChoiceField(choices=SHOWN_STATUSES))
    def get_shown_status(self, job: Job) -> str:
        return shown_status(job)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_cluster(self, job: Job) -> str | None:
        return job.cluster.name if job.cluster else None

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_retries(self, job: Job) -> list[str]:
        # `just_made` in the context: jobs a submit has just made, which no job retried yet.
        if self.context.get("just_made"):
            return []
        retries = sorted(job.retries.all(), key=lambda retry: (retry.created_at, retry.pk))
        return [str(retry.pk) for retry in retries]


# The cluster's answer as the job detail shows it: an object of its own, not a component, so
# that it can be null (OpenAPI 3.0 gives a reference no `nullable`).
CLUSTER_ANSWER = {
    "type": "object",
    "nullable": True,
    "description": "What the cluster answered, as received, for a job whose call got an HTTP "
    "answer (whatever its outcome); null otherwise.",
    "required": ["status", "content_type", "body", "truncated"],
    "properties": {
        "status": {
            "type": "integer",
            "description": "The HTTP status the cluster answered with, even one outside 100-599.",
        },
        "content_type": {
            "type": "string",
            "description": 'Its Content-Type header as sent; "" when none.',
        },
        "body": {
            "type": "string",
            "description": "The body's first 4 KB, decoded as UTF-8 (invalid bytes replaced), "
            'with any token redacted; "" when it was not read (a redirect, an unrecognised '
            "status, a body announced as over 1 MiB).",
        },
        "truncated": {
            "type": "boolean",
            "description": "The body was longer than what is kept.",
        },
    },
}


class JobDetailSerializer(JobSerializer):
    """A job, with the cluster's answer as received."""

    cluster_answer = serializers.SerializerMethodField()

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "cluster_answer"]
        read_only_fields = fields

    @extend_schema_field(CLUSTER_ANSWER)
    def get_cluster_answer(self, job: Job) -> dict | None:
        if job.cluster_answer_status is None:
            return None
        return {
            "status": job.cluster_answer_status,
            "content_type": job.cluster_answer_content_type,
            "body": job.cluster_answer_body,
            "truncated": job.cluster_answer_truncated,
        }


class JobCustomerSerializer(serializers.ModelSerializer):
    outcome = serializers.ChoiceField(
        choices=JobCustomer.Outcome.choices,
        allow_null=True,
        help_text="null when the cluster did not report per customer.",
    )

    class Meta:
        model = JobCustomer
        fields = ["cid", "outcome", "message"]
        read_only_fields = fields


class CustomerJobSerializer(JobSerializer):
    """A job in a customer's history, with that customer's outcome in it."""

    customer = serializers.SerializerMethodField()

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "customer"]
        read_only_fields = fields

    @extend_schema_field(JobCustomerSerializer)
    def get_customer(self, job: Job) -> dict:
        return {"cid": self.context["cid"], "outcome": job.cid_outcome, "message": job.cid_message}


class BatchSerializer(serializers.Serializer):
    batch_id = serializers.UUIDField()
    counts = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="The batch's visible jobs per stored status, every status present.",
    )
    jobs = JobSerializer(many=True, help_text="In the batch's order (batch_seq).")


class AuditEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(
        source="actor_username", help_text="The username; empty for the system."
    )
    # Imported legacy entries carry events outside the choices ("legacy.<action>").
    event = serializers.CharField()
    event_label = serializers.CharField(source="get_event_display")

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "created_at",
            "event",
            "event_label",
            "actor",
            "job_id",
            "ip_address",
            "details",
        ]
        read_only_fields = fields


class ClusterActionFilters:
    """The `cluster` (a name) and `action` (a name or number) of a list's query, as ids; a
    serializer that declares either field takes these checks."""

    def validate_action(self, value: str) -> int:
        try:
            return parse_action(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["action"]) from exc

    def validate_cluster(self, value: str) -> int:
        cluster_id = Cluster.objects.filter(name=value).values_list("pk", flat=True).first()
        if cluster_id is None:
            raise serializers.ValidationError(f"No cluster is named {value!r}.")
        return cluster_id


class JobFilterSerializer(ClusterActionFilters, serializers.Serializer):
    """The filters of GET /jobs; each given one must match."""

    status = serializers.ChoiceField(choices=Job.Status.choices, required=False)
    action = serializers.CharField(
        required=False, help_text='A name ("T-Enable", any case) or its number (1-5).'
    )
    cluster = serializers.CharField(required=False, help_text="The cluster's name.")
    operator = serializers.CharField(
        required=False,
        help_text="A username. Only for callers who see every operator's jobs.",
    )
    customer = serializers.CharField(
        required=False, max_length=64, help_text="A customer ID: the jobs that touched it."
    )
    created_after = serializers.DateTimeField(
        required=False, help_text="ISO 8601; created at or after it."
    )
    created_before = serializers.DateTimeField(
        required=False,
        help_text="ISO 8601; created before it. After created_after when both are given "
        "(else 400: no job could match).",
    )

    def validate_operator(self, value: str) -> int:
        if not self.context["user"].has_perm("jobs.view_all_jobs"):
            raise serializers.ValidationError("You see only your own jobs: leave it out.")
        user_id = (
            get_user_model().objects.filter(username=value).values_list("pk", flat=True).first()
        )
        if user_id is None:
            raise serializers.ValidationError(f"No user is named {value!r}.")
        return user_id

    def validate(self, data: dict) -> dict:
        after, before = data.get("created_after"), data.get("created_before")
        if after and before and after >= before:
            raise serializers.ValidationError(
                {"created_before": ["It is not after created_after: no job could match."]}
            )
        return data

    def filter(self, jobs: QuerySet[Job]) -> QuerySet[Job]:
        """The jobs that match every filter given. Users and clusters are looked up first, so
        that each filter is a plain column and its index (Job.Meta.indexes) serves it."""
        data = self.validated_data
        lookups = {
            "status": "status",
            "action": "action",
            "cluster": "cluster_id",
            "operator": "user_id",
            "created_after": "created_at__gte",
            "created_before": "created_at__lt",
        }
        jobs = jobs.filter(**{lookups[name]: data[name] for name in lookups if name in data})
        if "customer" in data:
            touched = JobCustomer.objects.filter(cid=data["customer"]).values("job_id")
            jobs = jobs.filter(pk__in=touched)
        return jobs


class Seconds(serializers.FloatField):
    """Seconds in ASCII digits, with an optional fraction (lib.numbers): float() would also
    take "٣" as 3, "1e1" and " 2"."""

    def to_internal_value(self, data) -> float:
        try:
            return decimal_number(data, maximum=self.max_value)
        except NotANumber as exc:
            raise serializers.ValidationError(str(exc)) from None


class WaitSerializer(serializers.Serializer):
    wait = Seconds(
        required=False,
        max_value=60,
        help_text="Seconds (more than 0, at most 60) to wait for the job to end before "
        "answering; the answer comes as soon as it has ended.",
    )

    def validate_wait(self, value: float) -> float:
        if value <= 0:
            raise serializers.ValidationError("Wait more than 0 and at most 60 seconds.")
        return value


class CustomerFilterSerializer(serializers.Serializer):
    failed = serializers.BooleanField(
        required=False, default=False, help_text="true: only the customers that failed."
    )


class AuditFilterSerializer(serializers.Serializer):
    # Compared as given: trimmed, a value of white space alone ("\x1d\n", which the schema
    # allows) became blank and was refused (Schemathesis found it).
    event = serializers.CharField(
        required=False,
        max_length=64,
        trim_whitespace=False,
        help_text='An event, for example "job.failed".',
    )
    actor = serializers.CharField(
        required=False, max_length=150, trim_whitespace=False, help_text="A username."
    )
    job = serializers.UUIDField(required=False, help_text="A job's id.")
    after = serializers.DateTimeField(required=False, help_text="ISO 8601; at or after it.")
    before = serializers.DateTimeField(required=False, help_text="ISO 8601; before it.")

    def filter(self, entries: QuerySet[AuditEntry]) -> QuerySet[AuditEntry]:
        data = self.validated_data
        lookups = {
            "event": "event",
            "actor": "actor_username",
            "job": "job_id",
            "after": "created_at__gte",
            "before": "created_at__lt",
        }
        return entries.filter(**{lookups[name]: data[name] for name in lookups if name in data})
