"""The schedules of saved Set Actions: GET and POST /api/v1/schedules, GET /schedules/{id},
its next occurrences (/next, in UTC and in the schedule's zone), its occurrences so far
(/occurrences), and POST /schedules/{id}/pause and /resume. Each its owner's (an admin's
token: everyone's); every change through schedules.services, audited; nothing is written on
any refusal. Approving a schedule's version: api.views.schedule_approvals.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_field
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.pagination import NewestFirst
from api.problems import problem
from api.schema import operation, page_parameters
from api.views.grants import row_by_id
from api.views.saved_set_actions import managed_by
from api.views.submit import Text
from audit.services import client_ip
from lib.numbers import NotANumber, whole_number
from lib.recurrence import RecurrenceError, zone
from schedules.models import MAX_GRACE_SECONDS, Occurrence, SavedSetAction, Schedule
from schedules.services import (
    MAX_NEXT,
    schedule_create,
    schedule_next,
    schedule_pause,
    schedule_resume,
)

# Instants are taken within this many years of now: Python's datetimes end at the year 9999,
# and a rule's occurrences are looked for from them.
YEARS = 100
DEFAULT_NEXT = 10
DEFAULT_SHOWN = 5


def _instant(value, field: str) -> dt.datetime:
    """An ISO 8601 date and time with its UTC offset ("Z" for UTC), within YEARS of now."""
    message = f"An ISO 8601 date and time with its UTC offset, within {YEARS} years of now."
    if not isinstance(value, str) or len(value) > 64:
        raise ValidationError({field: [message]})
    try:
        instant = dt.datetime.fromisoformat(value)
        if instant.tzinfo is None:
            raise ValueError
        instant = instant.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise ValidationError({field: [message]}) from None
    if abs(instant - timezone.now()) > dt.timedelta(days=365 * YEARS):
        raise ValidationError({field: [message]})
    return instant


@extend_schema_field({"type": "string", "format": "date-time"})
class Instant(Text):
    pass


class OccurrenceTime(serializers.Serializer):
    utc = serializers.DateTimeField()
    local = serializers.DateTimeField(help_text="The same instant in the schedule's zone.")


def _local(schedule: Schedule, instant: dt.datetime) -> str:
    try:
        return instant.astimezone(zone(schedule.timezone)).isoformat()
    except RecurrenceError:
        return instant.isoformat()


class ScheduleSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username")
    name = serializers.CharField(source="saved_set_action.name")
    rrule = serializers.CharField(allow_null=True, help_text="Null for a one-off schedule.")

    class Meta:
        model = Schedule
        fields = [
            "id",
            "saved_set_action",
            "name",
            "owner",
            "run_at",
            "rrule",
            "timezone",
            "start",
            "missing_dst",
            "missed",
            "grace_seconds",
            "overlap",
            "paused",
            "created_at",
        ]
        read_only_fields = fields

    def to_representation(self, schedule: Schedule) -> dict:
        data = super().to_representation(schedule)
        data["rrule"] = schedule.rrule or None
        return data


class ScheduleDetailSerializer(ScheduleSerializer):
    next = serializers.SerializerMethodField(
        help_text=f"The next {DEFAULT_SHOWN} occurrences; empty when the rule no longer parses."
    )

    class Meta(ScheduleSerializer.Meta):
        fields = [*ScheduleSerializer.Meta.fields, "next"]
        read_only_fields = fields

    @extend_schema_field(OccurrenceTime(many=True))
    def get_next(self, schedule: Schedule) -> list[dict]:
        try:
            upcoming = schedule_next(schedule=schedule, after=timezone.now(), count=DEFAULT_SHOWN)
        except RecurrenceError:
            return []
        return [{"utc": u.utc.isoformat(), "local": u.local.isoformat()} for u in upcoming]


class OccurrenceSerializer(serializers.ModelSerializer):
    local = serializers.SerializerMethodField(help_text="occurs_at in the schedule's zone.")

    class Meta:
        model = Occurrence
        fields = [
            "occurs_at",
            "local",
            "state",
            "reason",
            "version",
            "job",
            "batch_id",
            "recorded_at",
            "fired_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DateTimeField())
    def get_local(self, occurrence: Occurrence) -> str:
        return _local(occurrence.schedule, occurrence.occurs_at)


class ScheduleRequest(serializers.Serializer):
    saved_set_action = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, help_text="The id of one of your saved Set Actions."
    )
    run_at = Instant(required=False, help_text="Once, at this instant (with its offset).")
    rrule = Text(
        required=False,
        min_length=1,
        max_length=1000,
        help_text="Recurring: an RFC 5545 RRULE without DTSTART, "
        "such as FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;BYHOUR=6;BYMINUTE=0.",
    )
    timezone = Text(
        required=False,
        min_length=1,
        max_length=64,
        default="UTC",
        help_text="An IANA time zone name, such as Europe/Berlin.",
    )
    start = Instant(
        required=False,
        help_text="The rule's anchor (DTSTART), read as a wall time in the zone; by default "
        "the minute the schedule is created.",
    )
    missing_dst = serializers.ChoiceField(
        choices=Schedule.MissingDst.choices, default=Schedule.MissingDst.RUN
    )
    missed = serializers.ChoiceField(
        choices=Schedule.Missed.choices, default=Schedule.Missed.RUN_LATEST
    )
    grace_seconds = serializers.IntegerField(min_value=0, max_value=MAX_GRACE_SECONDS, default=900)
    overlap = serializers.ChoiceField(
        choices=Schedule.Overlap.choices, default=Schedule.Overlap.SKIP
    )


class ScheduleList(ListAPIView):
    """Your schedules (an admin's token: everyone's), newest first; a new one."""

    serializer_class = ScheduleSerializer
    pagination_class = NewestFirst

    def get_queryset(self):
        return managed_by(
            self.request.user, Schedule.objects.select_related("owner", "saved_set_action")
        )

    @operation(
        operation_id="schedules_list",
        summary="List schedules",
        tag="schedules",
        parameters=page_parameters(NewestFirst),
        responses={200: ScheduleSerializer(many=True)},
        errors=(403,),
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @operation(
        operation_id="schedules_create",
        summary="Schedule a saved Set Action, once or on a recurrence",
        tag="schedules",
        request=ScheduleRequest,
        responses={201: OpenApiResponse(ScheduleDetailSerializer, description="Scheduled.")},
        errors=(403, 415),
    )
    def post(self, request: Request) -> Response:
        """Run a saved Set Action once (`run_at`) or at every occurrence of `rrule` in
        `timezone`: each run a normal Set Action by its owner with the cluster's stored
        credential. Exactly one of `run_at` and `rrule`."""
        data = ScheduleRequest(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        errors: dict[str, list[str]] = {}
        instants = {}
        for name in ("run_at", "start"):
            if name in fields:
                try:
                    instants[name] = _instant(fields[name], name)
                except ValidationError as exc:
                    errors.update(exc.message_dict)
        saved = (
            managed_by(request.user, SavedSetAction.objects.select_related("owner", "cluster"))
            .filter(pk=fields["saved_set_action"])
            .first()
        )
        if saved is None:
            errors["saved_set_action"] = [
                f"You have no saved Set Action {fields['saved_set_action']}."
            ]
        if errors:
            return problem(400, "The request is invalid.", errors=errors)
        try:
            schedule = schedule_create(
                user=request.user,
                saved_set_action=saved,
                run_at=instants.get("run_at"),
                rrule=fields.get("rrule"),
                timezone_name=fields["timezone"],
                start=instants.get("start"),
                missing_dst=fields["missing_dst"],
                missed=fields["missed"],
                grace_seconds=fields["grace_seconds"],
                overlap=fields["overlap"],
                ip_address=client_ip(request._request),
            )
        except ValidationError as exc:
            return problem(400, "The request is invalid.", errors=exc.message_dict)
        return Response(ScheduleDetailSerializer(schedule).data, status=201)


SCHEDULE_ID = OpenApiParameter(
    "id",
    {"type": "integer", "format": "int64", "minimum": 1},
    OpenApiParameter.PATH,
    description="A schedule's id.",
)


def _schedule(request: Request, id: str) -> Schedule:
    """The schedule the path names, if the caller may see it; else a 404 problem."""
    return row_by_id(
        managed_by(request.user, Schedule.objects.select_related("owner", "saved_set_action")),
        id,
    )


class ScheduleDetail(APIView):
    @operation(
        operation_id="schedules_retrieve",
        summary="Get a schedule and its next occurrences",
        tag="schedules",
        parameters=[SCHEDULE_ID],
        responses={200: ScheduleDetailSerializer},
        errors=(403, 404),
    )
    def get(self, request: Request, id: str) -> Response:
        """One of your schedules (an admin's token: anyone's), with its next five runs in
        UTC and local time."""
        return Response(ScheduleDetailSerializer(_schedule(request, id)).data)


class NextOccurrences(serializers.Serializer):
    schedule = serializers.IntegerField()
    timezone = serializers.CharField()
    occurrences = OccurrenceTime(many=True)


class ScheduleNext(APIView):
    @operation(
        operation_id="schedules_next",
        summary="A schedule's next occurrences, in UTC and in its time zone",
        tag="schedules",
        parameters=[
            SCHEDULE_ID,
            OpenApiParameter(
                "after",
                {"type": "string", "format": "date-time"},
                OpenApiParameter.QUERY,
                description=f"Occurrences strictly after this instant (with its offset, within "
                f"{YEARS} years of now); by default now.",
            ),
            OpenApiParameter(
                "count",
                {"type": "integer", "minimum": 1, "maximum": MAX_NEXT, "default": DEFAULT_NEXT},
                OpenApiParameter.QUERY,
                description=f"How many, from 1 to {MAX_NEXT}.",
            ),
        ],
        responses={200: NextOccurrences},
        errors=(403, 404, 409),
    )
    def get(self, request: Request, id: str) -> Response:
        """The next `count` occurrences after `after`; 409 when the schedule's rule or zone
        no longer parses."""
        schedule = _schedule(request, id)
        errors: dict[str, list[str]] = {}
        after = timezone.now()
        if "after" in request.query_params:
            try:
                after = _instant(request.query_params["after"], "after")
            except ValidationError as exc:
                errors.update(exc.message_dict)
        count = DEFAULT_NEXT
        if "count" in request.query_params:
            try:
                count = whole_number(request.query_params["count"], minimum=1, maximum=MAX_NEXT)
            except NotANumber:
                errors["count"] = [f"A whole number from 1 to {MAX_NEXT}."]
        if errors:
            return problem(400, "The request is invalid.", errors=errors)
        try:
            upcoming = schedule_next(schedule=schedule, after=after, count=count)
        except RecurrenceError as exc:
            return problem(409, f"The schedule's rule or time zone no longer parses: {exc}")
        return Response(
            {
                "schedule": schedule.pk,
                "timezone": schedule.timezone,
                "occurrences": [
                    {"utc": u.utc.isoformat(), "local": u.local.isoformat()} for u in upcoming
                ],
            }
        )


class LatestFirst(NewestFirst):
    ordering = ("-occurs_at", "-id")


class ScheduleOccurrences(ListAPIView):
    serializer_class = OccurrenceSerializer
    pagination_class = LatestFirst

    def get_queryset(self):
        schedule = _schedule(self.request, self.kwargs["id"])
        return Occurrence.objects.filter(schedule=schedule).select_related("schedule")

    @operation(
        operation_id="schedules_occurrences_list",
        summary="A schedule's occurrences so far: fired, skipped, failed or queued",
        tag="schedules",
        parameters=[SCHEDULE_ID, *page_parameters(LatestFirst)],
        responses={200: OccurrenceSerializer(many=True)},
        errors=(403, 404),
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        """What happened at each occurrence of the schedule so far, latest first: fired (with
        its job and batch), skipped, failed or queued, with the reason."""
        return super().get(request, *args, **kwargs)


def _pause_view(paused: bool):
    verb = "pause" if paused else "resume"
    description = (
        "Stop the schedule firing, audited; its occurrences meanwhile are missed (see `missed`)."
        if paused
        else "Let the schedule fire again, audited; the latest missed occurrence may fire "
        "(see `missed`)."
    )

    class View(APIView):
        @operation(
            operation_id=f"schedules_{verb}",
            summary=f"{verb.capitalize()} a schedule",
            tag="schedules",
            request=None,
            parameters=[SCHEDULE_ID],
            responses={200: ScheduleDetailSerializer},
            errors=(403, 404),
            description=description,
        )
        def post(self, request: Request, id: str) -> Response:
            schedule = _schedule(request, id)
            change = schedule_pause if paused else schedule_resume
            change(schedule=schedule, user=request.user, ip_address=client_ip(request._request))
            return Response(ScheduleDetailSerializer(schedule).data)

    View.__name__ = View.__qualname__ = f"Schedule{verb.capitalize()}"
    View.__doc__ = description
    return View


SchedulePause = _pause_view(True)
ScheduleResume = _pause_view(False)
