"""GET /batches/{id}: the parts one submit split into, as far as the caller may see them."""

from __future__ import annotations

import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.schema import operation
from api.serializers import BatchSerializer, api_jobs
from jobs.models import Job


class BatchDetail(APIView):
    """The batch's jobs the caller may see, in the batch's order, and how many are in each
    stored status. 404 when the caller sees none of them."""

    @operation(
        operation_id="batches_retrieve",
        summary="Get a batch's jobs",
        tag="batches",
        parameters=[
            OpenApiParameter(
                "id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="A batch's id."
            )
        ],
        responses={200: BatchSerializer},
        errors=(404,),
    )
    def get(self, request: Request, id: str) -> Response:
        try:
            batch_id = uuid.UUID(id)
        except ValueError:
            raise NotFound from None
        jobs = list(api_jobs(request.user).filter(batch_id=batch_id).order_by("batch_seq", "id"))
        if not jobs:
            raise NotFound
        counts = dict.fromkeys(Job.Status.values, 0)
        for job in jobs:
            counts[job.status] += 1
        return Response(
            BatchSerializer({"batch_id": batch_id, "counts": counts, "jobs": jobs}).data
        )
