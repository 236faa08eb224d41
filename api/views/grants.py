"""GET and POST /api/v1/run-grants, DELETE /api/v1/run-grants/{id}: who may run which
actions on which clusters, for administrators' tokens only (api.authentication.AdminToken).

Every change goes through jobs.services, audited with the token's owner and address.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.authentication import AdminToken
from api.pagination import NewestFirst
from api.problems import problem
from api.schema import ACTION, operation, page_parameters
from api.views.submit import Text
from audit.services import client_ip
from jobs.models import Cluster, JobAction, RunGrant
from jobs.services import DuplicateGrant, parse_action, run_grant_create, run_grant_delete
from lib.numbers import NotANumber, whole_number

# The largest id the grants' table holds (a BigAutoField): a larger one is a 404, as any
# unknown id.
MAX_ID = 2**63 - 1


class RunGrantSerializer(serializers.ModelSerializer):
    group = serializers.CharField(
        source="group.name", allow_null=True, help_text="The group's name; null for a user's."
    )
    user = serializers.CharField(
        source="user.username", allow_null=True, help_text="The user's name; null for a group's."
    )
    cluster = serializers.CharField(
        source="cluster.name", allow_null=True, help_text="The cluster's name; null: any."
    )
    action = serializers.SerializerMethodField(help_text="The action's name; null: any.")

    class Meta:
        model = RunGrant
        fields = ["id", "group", "user", "cluster", "action", "created_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_action(self, grant: RunGrant) -> str | None:
        return JobAction(grant.action).label if grant.action else None


@extend_schema_field(ACTION)
class ActionOrAny(Text):
    pass


class _Target(serializers.Serializer):
    cluster = Text(
        max_length=100, allow_null=True, help_text="A cluster's name, or null for any cluster."
    )
    action = ActionOrAny(
        allow_null=True, help_text="An action's name (any case) or number, or null for any."
    )


class GroupGrantRequest(_Target):
    group = Text(max_length=150, help_text="A group's name.")


class UserGrantRequest(_Target):
    user = Text(max_length=150, help_text="A user's username.")


GRANT_REQUEST = PolymorphicProxySerializer(
    component_name="RunGrantRequest",
    serializers=[GroupGrantRequest, UserGrantRequest],
    resource_type_field_name=None,
)


class RunGrantRequest(_Target):
    """What the endpoint reads: a group or a user (exactly one), a cluster and an action."""

    group = Text(max_length=150, required=False)
    user = Text(max_length=150, required=False)

    def validate(self, data: dict) -> dict:
        if ("group" in data) == ("user" in data):
            raise serializers.ValidationError(
                {"group": ["Name a group or a user, not both and not neither."]}
            )
        return data


def named(model, field: str, value: str | None, label: str):
    """The `model` row whose `field` is `value` (None for None); a ValidationError on `label`
    (a 400 problem) when there is none."""
    if value is None:
        return None
    found = model.objects.filter(**{field: value}).first()
    if found is None:
        raise ValidationError({label: [f"No {label} {value!r}."]})
    return found


def row_by_id(queryset, id: str):
    """The row of `queryset` whose id the path names; a 404 problem for a malformed, out of range
    or unknown one alike."""
    try:
        pk = whole_number(id, minimum=1, maximum=MAX_ID)
    except NotANumber:
        raise NotFound from None
    found = queryset.filter(pk=pk).first()
    if found is None:
        raise NotFound
    return found


class RunGrantList(ListAPIView):
    """The run grants, newest first; a new one."""

    serializer_class = RunGrantSerializer
    pagination_class = NewestFirst
    permission_classes = [AdminToken]
    queryset = RunGrant.objects.select_related("group", "user", "cluster")

    @operation(
        operation_id="run_grants_list",
        summary="List the run grants",
        tag="run-grants",
        parameters=page_parameters(NewestFirst),
        responses={200: RunGrantSerializer(many=True)},
        errors=(403,),
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @operation(
        operation_id="run_grants_create",
        summary="Grant the running of an action on a cluster",
        tag="run-grants",
        request=GRANT_REQUEST,
        responses={201: OpenApiResponse(RunGrantSerializer, description="The grant made.")},
        errors=(403, 409, 415),
    )
    def post(self, request: Request) -> Response:
        """Let a group's members (or one user) run an action (null: any) on a cluster (null:
        any). 409 when the same grant exists; nothing is written on any refusal."""
        data = RunGrantRequest(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        action = fields["action"]
        try:
            grant = run_grant_create(
                group=named(Group, "name", fields.get("group"), "group"),
                user=named(get_user_model(), "username", fields.get("user"), "user"),
                cluster=named(Cluster, "name", fields["cluster"], "cluster"),
                action=None if action is None else parse_action(action),
                actor=request.user,
                ip_address=client_ip(request._request),
            )
        except DuplicateGrant as exc:
            return problem(409, " ".join(exc.messages))
        return Response(RunGrantSerializer(grant).data, status=201)


GRANT_ID = OpenApiParameter(
    "id",
    {"type": "integer", "format": "int64", "minimum": 1},
    OpenApiParameter.PATH,
    description="A run grant's id.",
)


class RunGrantDetail(APIView):
    permission_classes = [AdminToken]
    queryset = RunGrant.objects.all()

    @operation(
        operation_id="run_grants_delete",
        summary="Delete a run grant",
        tag="run-grants",
        request=None,
        parameters=[GRANT_ID],
        responses={204: OpenApiResponse(description="Deleted.")},
        errors=(403, 404),
    )
    def delete(self, request: Request, id: str) -> Response:
        """Delete a run grant: its group's members (or its user) no longer run what it
        covered, unless another grant covers it."""
        grant = row_by_id(RunGrant.objects.select_related("group", "user", "cluster"), id)
        if not run_grant_delete(
            grant=grant, actor=request.user, ip_address=client_ip(request._request)
        ):
            raise NotFound
        return Response(status=204)
