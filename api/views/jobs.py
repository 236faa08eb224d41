"""GET /jobs, /jobs/{id} (optionally waiting for the job to end) and /jobs/{id}/customers."""

from __future__ import annotations

import time
import uuid

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.pagination import InOrder, NewestFirst
from api.serializers import (
    CustomerFilterSerializer,
    JobCustomerSerializer,
    JobFilterSerializer,
    JobSerializer,
    WaitSerializer,
    api_jobs,
    problems,
)
from jobs.models import Job, JobCustomer

# How often a waiting request reads the job's status again.
WAIT_POLL_SECONDS = 0.25

JOB_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="A job's id.")


def visible_job_id(request: Request, job_id: str) -> uuid.UUID:
    """The id of a job the caller may see; 404 alike for a malformed, unknown or other
    operator's job, so that the answer tells nothing about others' jobs."""
    try:
        pk = uuid.UUID(job_id)
    except ValueError:
        raise NotFound from None
    if not Job.objects.visible_to(request.user).filter(pk=pk).exists():
        raise NotFound
    return pk


class JobList(ListAPIView):
    """The jobs the caller may see (an operator: their own), newest first, a page at a time
    (follow `next`). Each filter is served by an index in this order (Job.Meta.indexes)."""

    serializer_class = JobSerializer
    pagination_class = NewestFirst

    def get_queryset(self):
        filters = JobFilterSerializer(
            data=self.request.query_params, context={"user": self.request.user}
        )
        filters.is_valid(raise_exception=True)
        return filters.filter(api_jobs(self.request.user))

    @extend_schema(
        parameters=[JobFilterSerializer],
        responses={200: JobSerializer(many=True), **problems(400, 401, 429)},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class JobDetail(APIView):
    """One job. With `?wait=S` the answer waits until the job has ended or S seconds have
    passed, whichever comes first, so that a script need not ask in a loop.

    A waiting request holds one of gunicorn's threads (TMS_WEB_THREADS per process) for up to
    S seconds, re-reading the job's status every WAIT_POLL_SECONDS: as many scripts waiting at
    once as there are threads leave none for the dashboard. No transaction is held open while
    waiting (the API does not use ATOMIC_REQUESTS), so each read sees the job's latest state.
    """

    @extend_schema(
        parameters=[JOB_ID, WaitSerializer],
        responses={200: JobSerializer, **problems(400, 401, 404, 429)},
    )
    def get(self, request: Request, id: str) -> Response:
        pk = visible_job_id(request, id)
        params = WaitSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        wait = params.validated_data.get("wait")
        if wait:
            self._wait_for_end(pk, wait)
        # Deleted while waiting (dedupe_jobs removes duplicates): a 404 like any unknown job.
        return Response(JobSerializer(get_object_or_404(api_jobs(request.user), pk=pk)).data)

    @staticmethod
    def _wait_for_end(pk: uuid.UUID, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        status = Job.objects.filter(pk=pk).values_list("status", flat=True)
        while status.first() == Job.Status.IN_PROGRESS:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(WAIT_POLL_SECONDS, left))


class JobCustomers(ListAPIView):
    """A job's customers and each one's outcome, in the order they were submitted, a page at
    a time; `?failed=true` for only those that failed."""

    serializer_class = JobCustomerSerializer
    pagination_class = InOrder

    def get_queryset(self):
        pk = visible_job_id(self.request, self.kwargs["id"])
        params = CustomerFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        rows = JobCustomer.objects.filter(job_id=pk)
        if params.validated_data["failed"]:
            rows = rows.filter(outcome=JobCustomer.Outcome.FAILED)
        return rows

    @extend_schema(
        parameters=[JOB_ID, CustomerFilterSerializer],
        responses={200: JobCustomerSerializer(many=True), **problems(400, 401, 404, 429)},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)
