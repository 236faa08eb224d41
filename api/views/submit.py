"""The API's endpoints that change something, over the same services as the UI's forms:
POST /api/v1/set-actions, /jobs/{id}/retry and /jobs/{id}/cancel.

A Set Action or a retry needs an `Idempotency-Key` header: the same key and body again answer
the same jobs (200, `Idempotent-Replayed: true`), the same key with another body 422. The
cluster's token travels in the body as `cluster_token` and obeys the web form's rules: never
stored in clear, logged or echoed.

A refused request names every problem in one answer: the header's, the body's shape, and
what the service finds with the fields whose shape is right. New jobs answer 201 with a
`Location`: the job's API URL, or its batch's when there are several.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.problems import field_messages, problem
from api.schema import ACTION, IDEMPOTENCY_KEY, LOCATION, REPLAYED, operation
from api.serializers import JobSerializer
from api.views.jobs import JOB_ID, visible_job_id
from audit.services import client_ip
from jobs.models import Job
from jobs.services import (
    MAX_KEY_LENGTH,
    MAX_TOKEN_LENGTH,
    CustomerConflict,
    Frozen,
    Submitted,
    job_cancel,
    job_retry,
    job_submit,
    set_action_problems,
)


class Text(serializers.CharField):
    """A JSON string, and nothing else (CharField would take 42 as "42")."""

    def to_internal_value(self, data) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# TMS_CID_PATTERN, which the service checks each customer ID against (a Python regular
# expression; the default is one in JSON Schema's dialect too).
@extend_schema_field({"type": "string", "pattern": settings.TMS_CID_PATTERN})
class CustomerId(Text):
    pass


# The token travels to the cluster in an HTTP header: visible ASCII (jobs.services.input).
@extend_schema_field(
    {"type": "string", "pattern": f"^[!-~]{{1,{MAX_TOKEN_LENGTH}}}$", "writeOnly": True}
)
class ClusterToken(Text):
    pass


@extend_schema_field(ACTION)
class ActionName(Text):
    pass


class SetActionRequest(serializers.Serializer):
    action = ActionName(help_text="An action's name (T-Enable, any case) or number.")
    cluster = Text(max_length=100, help_text="An active cluster's name.")
    cids = serializers.ListField(
        child=CustomerId(),
        allow_empty=False,
        # What allow_empty says, as the schema's minItems.
        min_length=1,
        max_length=settings.TMS_MAX_CIDS,
        help_text=f"1 to {settings.TMS_MAX_CIDS} customer IDs (repeats count once).",
    )
    cluster_token = ClusterToken(write_only=True, trim_whitespace=False)
    freeze_override_reason = Text(
        required=False,
        default="",
        allow_blank=True,
        max_length=500,
        help_text="Administrators only (jobs.override_freeze): send it during a change "
        "freeze, for this reason (audited).",
    )


class RetryRequest(serializers.Serializer):
    cluster_token = ClusterToken(write_only=True, trim_whitespace=False)
    confirm_unknown = serializers.BooleanField(default=False)
    confirm_again = serializers.BooleanField(default=False)


class SubmittedResponse(serializers.Serializer):
    jobs = JobSerializer(many=True)
    batch_id = serializers.UUIDField(allow_null=True)


def _key_refusal(key: str | None) -> str:
    """Why the Idempotency-Key header is refused (missing, empty, too long or with control
    characters: a 400; 422 means a key reused with another body), or ""."""
    if key is None:
        return "This header is required."
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        return f"Give 1 to {MAX_KEY_LENGTH} characters; this one has {len(key)}."
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        return "It contains control characters."
    return ""


# The body's fields the service checks, by the service's names.
_CHECKED_FIELDS = {
    "action": "action",
    "cluster": "cluster",
    "cids": "cids",
    "cluster_token": "token",
}


@sensitive_variables()
def _checked(request: Request, body: serializers.Serializer) -> tuple[str, dict]:
    """The Idempotency-Key and the body's fields, or a 400 naming every problem at once: the
    header's, the body's shape, and what the service finds with the fields whose shape is
    right (only when something else is refused: otherwise the service reports them)."""
    key = request.headers.get("Idempotency-Key")
    errors = {} if body.is_valid() else field_messages(body.errors)
    if refusal := _key_refusal(key):
        errors["Idempotency-Key"] = [refusal]
    if errors and isinstance(request.data, dict):
        right = {
            _CHECKED_FIELDS[name]: request.data[name]
            for name in body.fields
            if name in _CHECKED_FIELDS and name in request.data and name not in errors
        }
        found = set_action_problems(user=request.user, **right)
        if "token" in found:
            found["cluster_token"] = found.pop("token")
        errors = found | errors
    if errors:
        raise serializers.ValidationError(errors)
    return key, body.validated_data


def _submitted(request: Request, submit) -> Response:
    """Run `submit` (a service call making jobs) and answer as the API promises."""
    try:
        jobs: Submitted = submit()
    except Frozen as exc:
        freeze = exc.freeze
        return problem(
            409,
            " ".join(exc.messages),
            freeze={
                "id": freeze.pk,
                "cluster": freeze.cluster.name if freeze.cluster_id else None,
                "ends_at": freeze.ends_at.isoformat(),
                "reason": freeze.reason,
            },
        )
    except CustomerConflict as exc:
        return problem(
            409,
            " ".join(exc.messages),
            jobs=[str(job_id) for job_id in exc.job_ids],
        )
    except ValidationError as exc:
        errors = getattr(exc, "message_dict", {})
        if "idempotency_key" in errors:
            return problem(422, " ".join(errors["idempotency_key"]))
        if "token" in errors:
            errors["cluster_token"] = errors.pop("token")
        if not errors:
            return problem(400, " ".join(exc.messages))
        return problem(400, "The request is invalid.", errors=errors)
    # Jobs just made have no retries: their answer says so without asking (JobSerializer).
    body = SubmittedResponse(
        {"jobs": jobs, "batch_id": jobs[0].batch_id},
        context={"request": request, "just_made": not jobs.replayed},
    ).data
    if jobs.replayed:
        return Response(body, status=200, headers={"Idempotent-Replayed": "true"})
    made = (
        reverse("api_batch", args=[jobs[0].batch_id])
        if jobs[0].batch_id
        else reverse("api_job", args=[jobs[0].pk])
    )
    return Response(body, status=201, headers={"Location": request.build_absolute_uri(made)})


SUBMITTED = {
    201: OpenApiResponse(
        SubmittedResponse,
        description="The jobs made; `Location` is the job's API URL, or its batch's.",
    ),
    200: OpenApiResponse(
        SubmittedResponse,
        description="A replay: the jobs the first request with this Idempotency-Key and body "
        "made (Idempotent-Replayed: true).",
    ),
}


class SetActionCreate(APIView):
    @operation(
        operation_id="set_actions_submit",
        summary="Run a Set Action",
        tag="set-actions",
        request=SetActionRequest,
        parameters=[IDEMPOTENCY_KEY, REPLAYED, LOCATION],
        responses=SUBMITTED,
        errors=(403, 409, 415, 422),
    )
    @sensitive_variables()
    def post(self, request: Request) -> Response:
        """Run a Set Action: one job, or a batch of jobs when the cluster splits the customers.
        409 while a change freeze covers the cluster, unless an administrator overrides it.
        A 400 names every problem of the request at once."""
        key, fields = _checked(request, SetActionRequest(data=request.data))
        return _submitted(
            request,
            lambda: job_submit(
                user=request.user,
                action=fields["action"],
                cluster=fields["cluster"],
                cids=fields["cids"],
                token=fields["cluster_token"],
                idempotency_key=key,
                ip_address=client_ip(request._request),
                freeze_override_reason=fields["freeze_override_reason"],
            ),
        )


def _visible_job(request: Request, job_id: str) -> Job:
    return Job.objects.select_related("cluster").get(pk=visible_job_id(request, job_id))


class JobRetry(APIView):
    @operation(
        operation_id="jobs_retry",
        summary="Retry a failed or unknown job",
        tag="jobs",
        request=RetryRequest,
        parameters=[IDEMPOTENCY_KEY, JOB_ID, REPLAYED, LOCATION],
        responses=SUBMITTED,
        errors=(403, 404, 409, 415, 422),
    )
    @sensitive_variables()
    def post(self, request: Request, id: str) -> Response:
        """Retry a FAILED or UNKNOWN job: its failed customers (all when the cluster did not
        report per customer) as new job(s); UNKNOWN needs `confirm_unknown`, a job already
        retried `confirm_again`."""
        job = _visible_job(request, id)
        key, fields = _checked(request, RetryRequest(data=request.data))
        return _submitted(
            request,
            lambda: job_retry(
                job=job,
                user=request.user,
                token=fields["cluster_token"],
                confirm_unknown=fields["confirm_unknown"],
                confirm_again=fields["confirm_again"],
                idempotency_key=key,
                ip_address=client_ip(request._request),
            ),
        )


class JobCancel(APIView):
    @operation(
        operation_id="jobs_cancel",
        summary="Cancel a queued job",
        tag="jobs",
        request=None,
        parameters=[JOB_ID],
        responses={200: JobSerializer},
        errors=(403, 404, 409),
    )
    def post(self, request: Request, id: str) -> Response:
        """Cancel a queued job, through the UI's service: 409 when a worker claimed it first
        (or it has ended)."""
        job = _visible_job(request, id)
        report = job_cancel(
            job_ids=[job.pk], user=request.user, ip_address=client_ip(request._request)
        )
        if job.pk in report.refused:
            return problem(409, report.refused[job.pk])
        job.refresh_from_db()
        return Response(JobSerializer(job, context={"request": request}).data)
