"""Four-eyes approvals through the API: POST /jobs/{id}/approve and /jobs/{id}/deny (a batch's
part decides its whole batch), and GET /approvals, what waits for the caller.

Only a token created with the approve scope (`can_approve`) decides, and only as its user
may: a member of the request's group who did not submit it (jobs.services.approving, where
the database refuses the submitter's decision too)."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Prefetch, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.pagination import NewestFirst
from api.problems import problem
from api.schema import operation, page_parameters
from api.serializers import JobSerializer
from api.views.jobs import JOB_ID
from audit.services import client_ip
from jobs.models import ApprovalDecision, ApprovalRequest, Job
from jobs.services import ApprovalClosed, approval_approve, approval_deny

NO_SCOPE = "This token was not created with the approve scope: it cannot approve or deny."
# Control characters are refused: a comment is one line of text (PostgreSQL stores no NUL).
_LINE = "[^\\x00-\\x1f\\x7f-\\x9f]"
MAX_COMMENT = 1000


@extend_schema_field(
    {"type": "string", "maxLength": MAX_COMMENT, "pattern": f"^{_LINE}*$", "default": ""}
)
class Comment(serializers.CharField):
    def __init__(self, **kwargs) -> None:
        super().__init__(
            max_length=MAX_COMMENT, trim_whitespace=False, validators=[_one_line], **kwargs
        )

    def to_internal_value(self, data) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# Something besides spaces: a denial says why.
@extend_schema_field(
    {
        "type": "string",
        "maxLength": MAX_COMMENT,
        "pattern": f"^{_LINE}*[^\\s\\x00-\\x1f\\x7f-\\x9f]{_LINE}*$",
    }
)
class Reason(Comment):
    pass


def _one_line(value: str) -> None:
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        raise serializers.ValidationError("A comment holds no control characters.")


class ApproveRequest(serializers.Serializer):
    comment = Comment(required=False, allow_blank=True, default="")


class DenyRequest(serializers.Serializer):
    comment = Reason(help_text="Why the request is denied (required).")


class _Decide(APIView):
    body: type[serializers.Serializer]

    def decide(self, request: Request, job: Job, comment: str) -> None:
        raise NotImplementedError

    def post(self, request: Request, id: str) -> Response:
        data = self.body(data=request.data)
        data.is_valid(raise_exception=True)
        if not request.auth.can_approve:
            raise PermissionDenied(NO_SCOPE)
        job = _decidable_job(request, id)
        if job.approval_id is None:
            return problem(409, "This job does not wait for approval.")
        try:
            self.decide(request, job, data.validated_data["comment"])
        except ApprovalClosed as exc:
            return problem(409, str(exc))
        job = Job.objects.prefetch_related("user", "cluster", "retries").get(pk=job.pk)
        return Response(JobSerializer(job).data)


def _decidable_job(request: Request, job_id: str) -> Job:
    """A job the caller may see, or whose approval request waits for their group; 404 alike
    for anything else."""
    try:
        pk = uuid.UUID(job_id)
    except ValueError:
        raise NotFound from None
    groups = Group.objects.filter(user=request.user)
    mine = Q(pk__in=Job.objects.visible_to(request.user).values("pk")) | Q(
        approval__approvers_group__in=groups
    )
    job = Job.objects.filter(mine, pk=pk).only("pk", "approval").first()
    if job is None:
        raise NotFound
    return job


DECISION_ERRORS = (403, 404, 409, 415)


class JobApprove(_Decide):
    body = ApproveRequest

    def decide(self, request: Request, job: Job, comment: str) -> None:
        approval_approve(
            request_id=job.approval_id,
            user=request.user,
            comment=comment,
            ip_address=client_ip(request._request),
        )

    @operation(
        operation_id="jobs_approve",
        summary="Approve a job waiting for approval (its whole batch)",
        tag="approvals",
        request=ApproveRequest,
        parameters=[JOB_ID],
        responses={200: JobSerializer},
        errors=DECISION_ERRORS,
    )
    def post(self, request: Request, id: str) -> Response:
        """Approve the approval request the job (and its batch) waits in: with a token created
        with the approve scope, as a member of the request's group who did not submit it
        (403 otherwise). With one approver required, or as the second of two, its jobs are
        queued; 409 when it was already decided, withdrawn or expired."""
        return super().post(request, id)


class JobDeny(_Decide):
    body = DenyRequest

    def decide(self, request: Request, job: Job, comment: str) -> None:
        approval_deny(
            request_id=job.approval_id,
            user=request.user,
            comment=comment,
            ip_address=client_ip(request._request),
        )

    @operation(
        operation_id="jobs_deny",
        summary="Deny a job waiting for approval (its whole batch)",
        tag="approvals",
        request=DenyRequest,
        parameters=[JOB_ID],
        responses={200: JobSerializer},
        errors=DECISION_ERRORS,
    )
    def post(self, request: Request, id: str) -> Response:
        """Deny the approval request the job (and its batch) waits in, saying why: every job
        of it ends DENIED, never sent. Who may, and the 409s, as for approving."""
        return super().post(request, id)


class ApprovalSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(choices=ApprovalRequest.Status.choices)
    submitter = serializers.CharField(source="submitter.username")
    approvers_group = serializers.CharField(source="approvers_group.name")
    approvals = serializers.IntegerField(
        source="approval_count", help_text="Approvals given so far."
    )
    customer_count = serializers.IntegerField(
        source="customers", help_text="Customers of every job of the request."
    )
    jobs = serializers.SerializerMethodField(help_text="Its jobs, in the batch's order.")

    class Meta:
        model = ApprovalRequest
        fields = [
            "id",
            "status",
            "submitter",
            "approvers_group",
            "approvers_required",
            "approvals",
            "customer_count",
            "jobs",
            "batch_id",
            "created_at",
            "expires_at",
            "decided_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.UUIDField()))
    def get_jobs(self, request: ApprovalRequest) -> list[str]:
        return [str(job.pk) for job in request.jobs.all()]


class ApprovalFilter(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=[s.lower() for s in ApprovalRequest.Status.values],
        default="pending",
        help_text="The requests in this status (default pending).",
    )


def _per_request(rows, column: str, aggregate) -> Coalesce:
    """`aggregate` of the rows of one request, as a subquery (0 when there are none)."""
    total = Subquery(rows.order_by().values(column).annotate(total=aggregate).values("total")[:1])
    return Coalesce(total, 0)


class ApprovalList(ListAPIView):
    """The approval requests of the caller's groups that they did not submit, newest first;
    pending ones (the default) only while the caller has not decided them yet."""

    serializer_class = ApprovalSerializer
    pagination_class = NewestFirst

    def get_queryset(self):
        filters = ApprovalFilter(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        status = filters.validated_data["status"].upper()
        user = self.request.user
        requests = ApprovalRequest.objects.filter(
            status=status, approvers_group__in=Group.objects.filter(user=user)
        ).exclude(submitter=user)
        if status == ApprovalRequest.Status.PENDING:
            requests = requests.exclude(
                pk__in=ApprovalDecision.objects.filter(decider=user).values("request_id")
            )
        return (
            requests.select_related("submitter", "approvers_group")
            .annotate(
                approval_count=_per_request(
                    ApprovalDecision.objects.filter(
                        request=OuterRef("pk"), verdict=ApprovalDecision.Verdict.APPROVE
                    ),
                    "request",
                    Count("pk"),
                ),
                customers=_per_request(
                    Job.objects.filter(approval=OuterRef("pk")), "approval", Sum("customer_count")
                ),
            )
            .prefetch_related(
                Prefetch("jobs", queryset=Job.objects.only("pk", "approval").order_by("batch_seq"))
            )
        )

    @operation(
        operation_id="approvals_list",
        summary="List the approval requests waiting for the caller",
        tag="approvals",
        parameters=[ApprovalFilter, *page_parameters(NewestFirst)],
        responses={200: ApprovalSerializer(many=True)},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)
