"""GET /jobs, /jobs/{id} (optionally waiting for the job to end) and /jobs/{id}/customers."""

from __future__ import annotations

import time
import uuid

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.pagination import InOrder, NewestFirst
from api.problems import PROBLEM
from api.schema import ACTION, ProblemSerializer, operation, page_parameters
from api.serializers import (
    CustomerFilterSerializer,
    JobCustomerSerializer,
    JobDetailSerializer,
    JobFilterSerializer,
    JobSerializer,
    WaitSerializer,
    api_jobs,
)
from api.waits import wait_slot
from jobs.models import Job, JobCustomer

# How often a waiting request reads the job's status again.
WAIT_POLL_SECONDS = 0.25

JOB_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="A job's id.")
# `wait` as WaitSerializer reads it: above 0 (its validate_wait), at most its max_value.
_WAIT_FIELD = WaitSerializer().fields["wait"]
WAIT = OpenApiParameter(
    "wait",
    {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": _WAIT_FIELD.max_value},
    OpenApiParameter.QUERY,
    description=_WAIT_FIELD.help_text,
)
ACTION_FILTER = OpenApiParameter(
    "action",
    ACTION,
    OpenApiParameter.QUERY,
    description="An action's name (any case) or its number.",
)
# GET /jobs/{id} answers 429 for the token's rate limit, as every read does, and also when a
# wait would pass one of the bounds on waits (api.waits).
WAITS_BUSY = {
    (429, PROBLEM): OpenApiResponse(
        ProblemSerializer,
        description="Too many requests for this token, or (with `wait`) too many waits at "
        "once: of this token (TMS_API_WAITS_PER_TOKEN) or on this server "
        "(TMS_API_WAITS_PER_PROCESS); `detail` says which. Ask without `wait`, or retry "
        "after `Retry-After` seconds.",
    )
}


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

    @operation(
        operation_id="jobs_list",
        summary="List jobs",
        tag="jobs",
        parameters=[JobFilterSerializer, ACTION_FILTER, *page_parameters(NewestFirst)],
        responses={200: JobSerializer(many=True)},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class JobDetail(APIView):
    """One job. With `?wait=S` the answer waits until the job has ended or S seconds have
    passed, whichever comes first, so that a script need not ask in a loop.

    A waiting request holds one of the web server's threads, so waits are bounded (api.waits):
    a token may wait on TMS_API_WAITS_PER_TOKEN requests at once and a web process serves
    TMS_API_WAITS_PER_PROCESS waits in all, leaving its other threads to the pages and
    /healthz. One more wait is refused at once with 429 and `Retry-After` (the seconds until
    a slot frees up at the latest): ask without `wait`, or retry then. A job that has ended
    already is answered at once, without a slot.

    No transaction is open while waiting (the API does not use ATOMIC_REQUESTS): each read of
    the status, every WAIT_POLL_SECONDS, is its own, so it sees the job's latest state and
    holds no lock that would keep the worker or a cancel from changing it.
    """

    @operation(
        operation_id="jobs_retrieve",
        summary="Get a job, or wait for it to end",
        tag="jobs",
        parameters=[JOB_ID, WAIT],
        responses={200: JobDetailSerializer, **WAITS_BUSY},
        errors=(404,),
    )
    def get(self, request: Request, id: str) -> Response:
        pk = visible_job_id(request, id)
        params = WaitSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        wait = params.validated_data.get("wait")
        if wait and _status(pk).first() == Job.Status.IN_PROGRESS:
            with wait_slot(token_id=request.auth.pk, seconds=wait):
                _wait_for_end(pk, wait)
        # Deleted while waiting (dedupe_jobs removes duplicates): a 404 like any unknown job.
        # Every column, the answer's body too, which the lists leave out.
        job = get_object_or_404(api_jobs(request.user).defer(None), pk=pk)
        return Response(JobDetailSerializer(job).data)


def _status(pk: uuid.UUID):
    """The job's status, read afresh at each `.first()`."""
    return Job.objects.filter(pk=pk).values_list("status", flat=True)


def _wait_for_end(pk: uuid.UUID, seconds: float) -> None:
    """Return when the job is no longer IN_PROGRESS (ended, or deleted) or after `seconds`."""
    deadline = time.monotonic() + seconds
    while _status(pk).first() == Job.Status.IN_PROGRESS:
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

    @operation(
        operation_id="jobs_customers_list",
        summary="List a job's customers and their outcomes",
        tag="jobs",
        parameters=[JOB_ID, CustomerFilterSerializer, *page_parameters(InOrder)],
        responses={200: JobCustomerSerializer(many=True)},
        errors=(404,),
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)
