"""GET /audit: the audit log, for those who may read it in the admin."""

from __future__ import annotations

from rest_framework.generics import ListAPIView
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from api.authentication import TokenScope
from api.pagination import NewestFirst
from api.schema import operation, page_parameters
from api.serializers import AuditEntrySerializer, AuditFilterSerializer
from audit.models import AuditEntry


class ReadsAuditLog(BasePermission):
    message = "Reading the audit log needs the audit.view_auditentry permission (Auditors)."

    def has_permission(self, request, view) -> bool:
        return request.user.has_perm("audit.view_auditentry")


class AuditList(ListAPIView):
    """The audit log, newest first, a page at a time. Each filter has its index in this order
    (event, actor; job and the dates by their own)."""

    serializer_class = AuditEntrySerializer
    pagination_class = NewestFirst
    permission_classes = [TokenScope, ReadsAuditLog]

    def get_queryset(self):
        filters = AuditFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return filters.filter(AuditEntry.objects.all())

    @operation(
        operation_id="audit_list",
        summary="List audit entries",
        tag="audit",
        parameters=[AuditFilterSerializer, *page_parameters(NewestFirst)],
        responses={200: AuditEntrySerializer(many=True)},
        errors=(403,),
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)
