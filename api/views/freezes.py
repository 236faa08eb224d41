"""GET and POST /api/v1/change-freezes, DELETE /api/v1/change-freezes/{id}; GET and POST
/api/v1/clusters/{name}/maintenance-windows, DELETE .../maintenance-windows/{id}: when nothing
is sent to a cluster, for administrators' tokens only (api.authentication.AdminToken over the
models' permissions).

Every change goes through jobs.services.freezes, audited with the token's owner and address.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.authentication import AdminToken
from api.pagination import NewestFirst
from api.schema import operation, page_parameters
from api.views.approval_rules import Whole
from api.views.grants import named, row_by_id
from api.views.submit import Text
from audit.services import client_ip
from jobs.models import ChangeFreeze, Cluster, MaintenanceWindow
from jobs.models.freezes import MAX_WINDOW_SECONDS
from jobs.services import freeze_create, freeze_delete, window_create, window_delete
from lib.recurrence import MAX_RULE_LENGTH


class Moment(serializers.DateTimeField):
    """An ISO 8601 date and time as a JSON string, and nothing else; without an offset it is
    in TIME_ZONE."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", format="ISO 8601")
        return super().to_internal_value(data)


class ChangeFreezeSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(
        source="cluster.name", allow_null=True, help_text="The cluster's name; null: every one."
    )
    created_by = serializers.CharField(
        source="created_by.username", allow_null=True, help_text="Who made it."
    )

    class Meta:
        model = ChangeFreeze
        fields = ["id", "cluster", "starts_at", "ends_at", "reason", "created_by", "created_at"]
        read_only_fields = fields


class ChangeFreezeRequest(serializers.Serializer):
    """A new freeze. The cluster is always named, null for every cluster: "every" is said,
    never assumed from a missing key."""

    cluster = Text(
        max_length=100, allow_null=True, help_text="A cluster's name, or null for every cluster."
    )
    starts_at = Moment(help_text="When it starts (ISO 8601; without an offset, in TIME_ZONE).")
    ends_at = Moment(help_text="When it ends: after `starts_at`.")
    reason = Text(max_length=500, help_text="Why: shown to whoever it refuses or holds.")


class ChangeFreezeList(ListAPIView):
    """The change freezes, newest first; a new one."""

    serializer_class = ChangeFreezeSerializer
    pagination_class = NewestFirst
    permission_classes = [AdminToken]
    queryset = ChangeFreeze.objects.select_related("cluster", "created_by")

    @operation(
        operation_id="change_freezes_list",
        summary="List the change freezes",
        tag="change-freezes",
        parameters=page_parameters(NewestFirst),
        responses={200: ChangeFreezeSerializer(many=True)},
        errors=(403,),
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @operation(
        operation_id="change_freezes_create",
        summary="Freeze changes to a cluster, or to every cluster",
        tag="change-freezes",
        request=ChangeFreezeRequest,
        responses={201: OpenApiResponse(ChangeFreezeSerializer, description="The freeze made.")},
        errors=(403, 415),
    )
    def post(self, request: Request) -> Response:
        """From `starts_at` until `ends_at`, refuse Set Actions to the cluster (null: every
        cluster) and hold its queued jobs until the end. Nothing is written on any refusal."""
        data = ChangeFreezeRequest(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        freeze = ChangeFreeze(
            cluster=named(Cluster, "name", fields["cluster"], "cluster"),
            starts_at=fields["starts_at"],
            ends_at=fields["ends_at"],
            reason=fields["reason"],
        )
        freeze_create(freeze=freeze, actor=request.user, ip_address=client_ip(request._request))
        return Response(ChangeFreezeSerializer(freeze).data, status=201)


ID = {"type": "integer", "format": "int64", "minimum": 1}
FREEZE_ID = OpenApiParameter("id", ID, OpenApiParameter.PATH, description="A freeze's id.")


class ChangeFreezeDetail(APIView):
    permission_classes = [AdminToken]
    queryset = ChangeFreeze.objects.all()

    @operation(
        operation_id="change_freezes_delete",
        summary="Remove a change freeze",
        tag="change-freezes",
        request=None,
        parameters=[FREEZE_ID],
        responses={204: OpenApiResponse(description="Removed.")},
        errors=(403, 404),
    )
    def delete(self, request: Request, id: str) -> Response:
        """Remove a change freeze: Set Actions to its clusters are taken again, and the jobs
        it held are sent within a minute."""
        freeze = row_by_id(ChangeFreeze.objects.select_related("cluster"), id)
        if not freeze_delete(
            freeze=freeze, actor=request.user, ip_address=client_ip(request._request)
        ):
            raise NotFound
        return Response(status=204)


class MaintenanceWindowSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name", help_text="The cluster's name.")

    class Meta:
        model = MaintenanceWindow
        fields = [
            "id",
            "cluster",
            "rrule",
            "timezone",
            "starts_at",
            "duration_seconds",
            "created_at",
        ]
        read_only_fields = fields


class MaintenanceWindowRequest(serializers.Serializer):
    rrule = Text(
        max_length=MAX_RULE_LENGTH,
        help_text="An RFC 5545 RRULE without DTSTART: when each window opens, "
        "e.g. FREQ=WEEKLY;BYDAY=SA;BYHOUR=22;BYMINUTE=0.",
    )
    timezone = Text(max_length=64, help_text="The IANA time zone the rule runs in.")
    starts_at = Moment(
        required=False,
        help_text="The rule's DTSTART: its first possible opening, and the hour, minute and "
        "second of openings the rule does not set; left out: now.",
    )
    duration_seconds = Whole(
        min_value=60,
        max_value=MAX_WINDOW_SECONDS,
        help_text="How long each window stays open (60 s to 7 days).",
    )


CLUSTER_NAME = OpenApiParameter("name", str, OpenApiParameter.PATH, description="A cluster's name.")
WINDOW_ID = OpenApiParameter(
    "id", ID, OpenApiParameter.PATH, description="A maintenance window's id."
)


def _cluster(name: str) -> Cluster:
    cluster = Cluster.objects.filter(name=name).first()
    if cluster is None:
        raise NotFound
    return cluster


class MaintenanceWindowList(ListAPIView):
    """A cluster's maintenance windows; a new one."""

    serializer_class = MaintenanceWindowSerializer
    pagination_class = NewestFirst
    permission_classes = [AdminToken]
    queryset = MaintenanceWindow.objects.all()

    def get_queryset(self):
        return MaintenanceWindow.objects.filter(
            cluster=_cluster(self.kwargs["name"])
        ).select_related("cluster")

    @operation(
        operation_id="maintenance_windows_list",
        summary="List a cluster's maintenance windows",
        tag="maintenance-windows",
        parameters=[CLUSTER_NAME, *page_parameters(NewestFirst)],
        responses={200: MaintenanceWindowSerializer(many=True)},
        errors=(403, 404),
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @operation(
        operation_id="maintenance_windows_create",
        summary="Send a cluster's jobs only in its maintenance windows",
        tag="maintenance-windows",
        request=MaintenanceWindowRequest,
        parameters=[CLUSTER_NAME],
        responses={
            201: OpenApiResponse(MaintenanceWindowSerializer, description="The window made.")
        },
        errors=(403, 404, 415),
    )
    def post(self, request: Request, name: str) -> Response:
        """Add a window to the cluster: from then on its jobs are taken at any time but sent
        only while one of its windows is open. Nothing is written on any refusal."""
        cluster = _cluster(name)
        data = MaintenanceWindowRequest(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        window = MaintenanceWindow(cluster=cluster, **fields)
        window_create(window=window, actor=request.user, ip_address=client_ip(request._request))
        return Response(MaintenanceWindowSerializer(window).data, status=201)


class MaintenanceWindowDetail(APIView):
    permission_classes = [AdminToken]
    queryset = MaintenanceWindow.objects.all()

    @operation(
        operation_id="maintenance_windows_delete",
        summary="Remove a maintenance window",
        tag="maintenance-windows",
        request=None,
        parameters=[CLUSTER_NAME, WINDOW_ID],
        responses={204: OpenApiResponse(description="Removed.")},
        errors=(403, 404),
    )
    def delete(self, request: Request, name: str, id: str) -> Response:
        """Remove a maintenance window; a cluster left without any is always open."""
        queryset = MaintenanceWindow.objects.filter(cluster=_cluster(name)).select_related(
            "cluster"
        )
        window = row_by_id(queryset, id)
        if not window_delete(
            window=window, actor=request.user, ip_address=client_ip(request._request)
        ):
            raise NotFound
        return Response(status=204)
