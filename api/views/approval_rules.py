"""GET and POST /api/v1/approval-rules, DELETE /api/v1/approval-rules/{id}: which Set Actions
wait for approval and by whom, for administrators' tokens only (api.authentication.AdminToken
over the approval rules' model permissions).

Every change goes through jobs.services, audited with the token's owner and address.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.authentication import AdminToken
from api.pagination import NewestFirst
from api.problems import problem
from api.schema import operation, page_parameters
from api.views.grants import ActionOrAny, named, row_by_id
from api.views.submit import Text
from audit.services import client_ip
from jobs.models import ApprovalRule, Cluster, JobAction
from jobs.models.approvals import MAX_TTL_SECONDS
from jobs.services import DuplicateRule, approval_rule_create, approval_rule_delete, parse_action

# The largest value the rule's integer columns hold on PostgreSQL (PositiveIntegerField).
MAX_CUSTOMERS = 2**31 - 1


class ApprovalRuleSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(
        source="cluster.name", allow_null=True, help_text="The cluster's name; null: any."
    )
    action = serializers.SerializerMethodField(help_text="The action's name; null: any.")
    approvers_group = serializers.CharField(
        source="approvers_group.name", help_text="The group whose members approve."
    )

    class Meta:
        model = ApprovalRule
        fields = [
            "id",
            "cluster",
            "action",
            "min_customers",
            "approvers_group",
            "ttl_seconds",
            "approvers_required",
            "per_run",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_action(self, rule: ApprovalRule) -> str | None:
        return JobAction(rule.action).label if rule.action else None


class Whole(serializers.IntegerField):
    """A JSON integer, and nothing else (IntegerField would take "5", 5.0 and true)."""

    def to_internal_value(self, data) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class Flag(serializers.BooleanField):
    """A JSON true or false, and nothing else (BooleanField would take "yes", 1 and "on")."""

    def to_internal_value(self, data) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class ApprovalRuleRequest(serializers.Serializer):
    """A new rule. The cluster and the action are always named, null for any: "any" is said,
    never assumed from a missing key (as for run grants)."""

    cluster = Text(
        max_length=100, allow_null=True, help_text="A cluster's name, or null for any cluster."
    )
    action = ActionOrAny(
        allow_null=True, help_text="An action's name (any case) or number, or null for any."
    )
    approvers_group = Text(max_length=150, help_text="The name of the group whose members approve.")
    min_customers = Whole(
        required=False,
        default=0,
        min_value=0,
        max_value=MAX_CUSTOMERS,
        help_text="The rule covers submissions of at least this many customers (0: every one).",
    )
    ttl_seconds = Whole(
        required=False,
        min_value=1,
        max_value=MAX_TTL_SECONDS,
        help_text="Seconds a request waits for its decision before it expires (at most 7 "
        "days); left out: TMS_APPROVAL_TTL.",
    )
    approvers_required = Whole(
        required=False,
        default=1,
        min_value=1,
        max_value=2,
        help_text="2: two different members must approve.",
    )
    per_run = Flag(
        required=False,
        default=False,
        help_text="true: each scheduled run waits for its own approval; false: approving a "
        "schedule's version once lets its runs through.",
    )


class ApprovalRuleList(ListAPIView):
    """The approval rules, newest first; a new one."""

    serializer_class = ApprovalRuleSerializer
    pagination_class = NewestFirst
    permission_classes = [AdminToken]
    queryset = ApprovalRule.objects.select_related("cluster", "approvers_group")

    @operation(
        operation_id="approval_rules_list",
        summary="List the approval rules",
        tag="approval-rules",
        parameters=page_parameters(NewestFirst),
        responses={200: ApprovalRuleSerializer(many=True)},
        errors=(403,),
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @operation(
        operation_id="approval_rules_create",
        summary="Make Set Actions wait for approval",
        tag="approval-rules",
        request=ApprovalRuleRequest,
        responses={201: OpenApiResponse(ApprovalRuleSerializer, description="The rule made.")},
        errors=(403, 409, 415),
    )
    def post(self, request: Request) -> Response:
        """Make Set Actions of an action (null: any) on a cluster (null: any), of at least
        `min_customers` customers, wait for the approval of a group's members. 409 when a
        rule equal in every field exists; nothing is written on any refusal."""
        data = ApprovalRuleRequest(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        action = fields["action"]
        rule = ApprovalRule(
            cluster=named(Cluster, "name", fields["cluster"], "cluster"),
            action=None if action is None else parse_action(action),
            min_customers=fields["min_customers"],
            approvers_group=named(Group, "name", fields["approvers_group"], "approvers_group"),
            ttl_seconds=fields.get("ttl_seconds", settings.TMS_APPROVAL_TTL),
            approvers_required=fields["approvers_required"],
            per_run=fields["per_run"],
        )
        try:
            approval_rule_create(
                rule=rule, actor=request.user, ip_address=client_ip(request._request)
            )
        except DuplicateRule as exc:
            return problem(409, " ".join(exc.messages))
        return Response(ApprovalRuleSerializer(rule).data, status=201)


RULE_ID = OpenApiParameter(
    "id",
    {"type": "integer", "format": "int64", "minimum": 1},
    OpenApiParameter.PATH,
    description="An approval rule's id.",
)


class ApprovalRuleDetail(APIView):
    permission_classes = [AdminToken]
    queryset = ApprovalRule.objects.all()

    @operation(
        operation_id="approval_rules_delete",
        summary="Delete an approval rule",
        tag="approval-rules",
        request=None,
        parameters=[RULE_ID],
        responses={204: OpenApiResponse(description="Deleted.")},
        errors=(403, 404),
    )
    def delete(self, request: Request, id: str) -> Response:
        """Delete an approval rule: the Set Actions it covered no longer wait for approval,
        unless another rule covers them. Requests it made keep waiting as they were."""
        rule = row_by_id(ApprovalRule.objects.select_related("cluster", "approvers_group"), id)
        if not approval_rule_delete(
            rule=rule, actor=request.user, ip_address=client_ip(request._request)
        ):
            raise NotFound
        return Response(status=204)
