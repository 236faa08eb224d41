"""GET and POST /api/v1/saved-set-actions: Set Actions saved to run later or on a schedule,
each its owner's (an admin's token sees and manages everyone's).

Saving checks the Set Action exactly as a submit does (schedules.services), audited; nothing
is written on any refusal.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from api.pagination import NewestFirst
from api.problems import problem
from api.schema import operation, page_parameters
from api.views.submit import ActionName, CustomerId, Text
from audit.services import client_ip
from jobs.models import JobAction
from schedules.models import SavedSetAction
from schedules.services import saved_set_action_create


def managed_by(user, queryset):
    """The rows of `queryset` (with an `owner`) that `user` may see: their own, or all for an
    admin."""
    return queryset if user.is_superuser else queryset.filter(owner=user)


class SavedSetActionSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")
    action = serializers.SerializerMethodField()
    cluster = serializers.CharField(
        source="cluster.name", allow_null=True, help_text="Null when the cluster was deleted."
    )

    class Meta:
        model = SavedSetAction
        fields = [
            "id",
            "name",
            "owner",
            "action",
            "cluster",
            "customer_count",
            "version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField())
    def get_action(self, saved: SavedSetAction) -> str:
        return JobAction(saved.action).label


class SavedSetActionRequest(serializers.Serializer):
    name = Text(
        min_length=1,
        max_length=100,
        help_text="A name unique among yours: printable characters, without spaces at either end.",
    )
    action = ActionName(help_text="An action's name (T-Enable, any case) or number.")
    cluster = Text(max_length=100, help_text="An active cluster's name.")
    cids = serializers.ListField(
        child=CustomerId(),
        allow_empty=False,
        min_length=1,
        max_length=settings.TMS_MAX_CIDS,
        help_text=f"1 to {settings.TMS_MAX_CIDS} customer IDs (repeats count once).",
    )


class SavedSetActionList(ListAPIView):
    """Your saved Set Actions (an admin's token: everyone's), newest first; a new one."""

    serializer_class = SavedSetActionSerializer
    pagination_class = NewestFirst

    def get_queryset(self):
        return managed_by(
            self.request.user, SavedSetAction.objects.select_related("owner", "cluster")
        )

    @operation(
        operation_id="saved_set_actions_list",
        summary="List saved Set Actions",
        tag="schedules",
        parameters=page_parameters(NewestFirst),
        responses={200: SavedSetActionSerializer(many=True)},
        errors=(403,),
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        """Your saved Set Actions (an admin's token: everyone's), newest first."""
        return super().get(request, *args, **kwargs)

    @operation(
        operation_id="saved_set_actions_create",
        summary="Save a Set Action to run later or on a schedule",
        tag="schedules",
        request=SavedSetActionRequest,
        responses={201: OpenApiResponse(SavedSetActionSerializer, description="Saved.")},
        errors=(403, 415),
    )
    def post(self, request: Request) -> Response:
        """Save a Set Action as version 1: checked as a submit is (the action, the active
        cluster, the customers, your run grant); 400 on a name you already use."""
        data = SavedSetActionRequest(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        try:
            saved = saved_set_action_create(
                user=request.user,
                name=fields["name"],
                action=fields["action"],
                cluster=fields["cluster"],
                cids=fields["cids"],
                ip_address=client_ip(request._request),
            )
        except ValidationError as exc:
            return problem(400, "The request is invalid.", errors=exc.message_dict)
        return Response(SavedSetActionSerializer(saved).data, status=201)
