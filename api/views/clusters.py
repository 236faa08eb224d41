"""GET /api/v1/clusters: the active clusters, by name."""

from __future__ import annotations

from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.schema import operation
from jobs.models import Cluster


class ClusterSerializer(serializers.ModelSerializer):
    class Meta:
        model = Cluster
        fields = ["name", "max_cids_per_request", "max_concurrent_calls"]


class ClusterList(APIView):
    """The active clusters a Set Action may name (no URLs: operators never see them)."""

    @operation(
        operation_id="clusters_list",
        summary="List the active clusters",
        tag="clusters",
        responses={200: ClusterSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        clusters = Cluster.objects.filter(is_active=True).order_by("name")
        return Response(ClusterSerializer(clusters, many=True).data)
