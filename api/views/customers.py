"""GET /customers/{cid}/jobs: a customer's history, with its outcome in each job."""

from __future__ import annotations

from django.db.models import OuterRef, Subquery
from drf_spectacular.utils import OpenApiParameter
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from api.pagination import NewestFirst
from api.schema import operation, page_parameters
from api.serializers import CustomerJobSerializer, api_jobs
from jobs.models import JobCustomer


class CustomerJobs(ListAPIView):
    """The jobs the caller may see that touched the customer, newest first, each with the
    customer's outcome in it. A customer no visible job touched has an empty history (200),
    as an unknown one does: the answer tells nothing about others' jobs.

    Any customer ID without "/" fits the path, percent-encoded where it needs to be
    (imported legacy IDs may hold "?" or "#")."""

    serializer_class = CustomerJobSerializer
    pagination_class = NewestFirst

    def get_queryset(self):
        cid = self.kwargs["cid"]
        row = JobCustomer.objects.filter(job_id=OuterRef("pk"), cid=cid)
        # The few jobs that touched the customer (by the cid index), then this page of them.
        return (
            api_jobs(self.request.user)
            .filter(pk__in=JobCustomer.objects.filter(cid=cid).values("job_id"))
            .annotate(
                cid_outcome=Subquery(row.values("outcome")[:1]),
                cid_message=Subquery(row.values("message")[:1]),
            )
        )

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "cid": self.kwargs["cid"]}

    @operation(
        operation_id="customers_jobs_list",
        summary="List a customer's jobs",
        tag="customers",
        parameters=[
            OpenApiParameter(
                "cid",
                # Any text but "/", which would end the path's segment (a 404), and NUL, which
                # the server refuses anywhere in the address (a 400).
                {"type": "string", "pattern": "^[^/\\x00]+$"},
                OpenApiParameter.PATH,
                description="A customer ID.",
            ),
            *page_parameters(NewestFirst),
        ],
        responses={200: CustomerJobSerializer(many=True)},
        errors=(404,),
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)
