"""GET /api/v1/clusters: the active clusters, by name, each saying whether it has a stored
credential; PUT and DELETE /api/v1/clusters/{name}/credential: setting, replacing and removing
a cluster's stored credential, for administrators' tokens only (api.authentication.AdminToken
over the credentials' model permissions). The token is written, never read back: no answer
holds it. Every change goes through jobs.services, audited with the token's owner and address.
"""

from __future__ import annotations

from django.db.models import OuterRef, Subquery
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.authentication import AdminToken
from api.problems import problem
from api.schema import operation
from api.views.submit import ClusterToken
from audit.services import client_ip
from jobs.models import Cluster, ClusterCredential
from jobs.services import credential_remove, credential_set


class CredentialSerializer(serializers.Serializer):
    """All that is ever said of a cluster's stored credential."""

    set = serializers.BooleanField(help_text="Whether the cluster has a stored credential.")
    changed_at = serializers.DateTimeField(
        allow_null=True, help_text="When it was last set or changed; null when none is set."
    )


class ClusterSerializer(serializers.ModelSerializer):
    credential = serializers.SerializerMethodField()

    class Meta:
        model = Cluster
        fields = ["name", "max_cids_per_request", "max_concurrent_calls", "credential"]

    @extend_schema_field(CredentialSerializer)
    def get_credential(self, cluster: Cluster) -> dict:
        changed_at = cluster.credential_changed_at
        return CredentialSerializer({"set": changed_at is not None, "changed_at": changed_at}).data


def with_credential_status(clusters):
    """`clusters` with `credential_changed_at` (None: no stored credential), never more of it."""
    return clusters.annotate(
        credential_changed_at=Subquery(
            ClusterCredential.objects.filter(cluster=OuterRef("pk")).values("changed_at")
        )
    )


class ClusterList(APIView):
    """The active clusters a Set Action may name (no URLs: operators never see them)."""

    @operation(
        operation_id="clusters_list",
        summary="List the active clusters",
        tag="clusters",
        responses={200: ClusterSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        clusters = with_credential_status(Cluster.objects.filter(is_active=True)).order_by("name")
        return Response(ClusterSerializer(clusters, many=True).data)


class CredentialRequest(serializers.Serializer):
    token = ClusterToken(
        write_only=True,
        trim_whitespace=False,
        help_text="The cluster's service token: visible ASCII, stored encrypted, never shown.",
    )


CLUSTER_NAME = OpenApiParameter(
    "name",
    # Any text but "/", which would end the path's segment (a 404), and NUL, which the server
    # refuses anywhere in the address (a 400).
    {"type": "string", "pattern": "^[^/\\x00]+$", "maxLength": 100},
    OpenApiParameter.PATH,
    description="A cluster's name (active or not).",
)


def _cluster(name: str) -> Cluster:
    found = Cluster.objects.filter(name=name).first()
    if found is None:
        raise NotFound
    return found


class ClusterCredentialDetail(APIView):
    permission_classes = [AdminToken]
    queryset = ClusterCredential.objects.none()

    @operation(
        operation_id="clusters_credential_set",
        summary="Set or replace a cluster's stored credential",
        tag="clusters",
        request=CredentialRequest,
        parameters=[CLUSTER_NAME],
        responses={204: OpenApiResponse(description="Stored (encrypted).")},
        errors=(403, 404, 415),
    )
    # Error reports hide this call's locals: the request's data holds the token.
    @method_decorator(sensitive_variables())
    def put(self, request: Request, name: str) -> Response:
        """Store the cluster's service token for jobs that use its stored credential
        (unattended runs, and operators whose run grant allows it), replacing any it had.
        Only its worker decrypts it, when it calls the cluster; no answer ever holds it.
        Nothing is written on any refusal."""
        cluster = _cluster(name)
        data = CredentialRequest(data=request.data)
        data.is_valid(raise_exception=True)
        credential_set(
            cluster=cluster,
            token=data.validated_data["token"],
            actor=request.user,
            ip_address=client_ip(request._request),
        )
        return Response(status=204)

    @operation(
        operation_id="clusters_credential_delete",
        summary="Remove a cluster's stored credential",
        tag="clusters",
        request=None,
        parameters=[CLUSTER_NAME],
        responses={204: OpenApiResponse(description="Removed.")},
        errors=(403, 404),
    )
    def delete(self, request: Request, name: str) -> Response:
        """Remove the cluster's stored credential: jobs queued to use it then fail without
        calling the cluster. 404 when the cluster has none (or is unknown)."""
        cluster = _cluster(name)
        if not credential_remove(
            cluster=cluster, actor=request.user, ip_address=client_ip(request._request)
        ):
            return problem(404, f"Cluster {cluster.name} has no stored credential.")
        return Response(status=204)
