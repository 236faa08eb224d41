"""GET /api/v1/stats: the numbers the Overview page draws (jobs.services.overview_stats), for a
team's own dashboards: jobs per bin by outcome, failure rates per cluster, call times per
cluster. A token whose user sees every job (jobs.view_all_jobs) gets everyone's; any other
token its user's own."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.schema import ACTION, operation
from api.serializers import ClusterActionFilters
from jobs.services import OUTCOMES, PERIODS, Overview, overview_stats


class StatsFilterSerializer(ClusterActionFilters, serializers.Serializer):
    """The query of GET /stats."""

    period = serializers.ChoiceField(
        choices=list(PERIODS),
        default="24h",
        help_text="24h: 24 bins of 1 hour; 7d: 28 bins of 6 hours; 30d: 30 bins of 1 day.",
    )
    cluster = serializers.CharField(required=False, help_text="A cluster's name.")
    action = serializers.CharField(
        required=False, help_text='A name ("T-Enable", any case) or its number (1-5).'
    )


class OutcomeCountsSerializer(serializers.Serializer):
    """The jobs that ended in each outcome; every outcome is present, 0 when none."""

    def get_fields(self) -> dict:
        return {outcome: serializers.IntegerField() for outcome in OUTCOMES}


class OutcomeBinSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(help_text="The last bin ends at the next whole hour.")
    counts = OutcomeCountsSerializer()
    total = serializers.IntegerField()


class ClusterFailuresSerializer(serializers.Serializer):
    cluster = serializers.CharField(source="cluster_name")
    sent = serializers.IntegerField(help_text="Jobs sent to the cluster in the period.")
    failed = serializers.IntegerField(help_text="Of them, FAILED or UNKNOWN.")
    sent_last_hour = serializers.IntegerField(
        help_text="Jobs sent in the current UTC hour and the one before it."
    )
    failed_last_hour = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True, help_text="failed / sent; null when none sent.")
    rate_last_hour = serializers.FloatField(allow_null=True)


class CallTimePointSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    calls = serializers.IntegerField()
    p50_ms = serializers.FloatField(
        allow_null=True, help_text="Approximate (within about 19%); null when no call."
    )
    p95_ms = serializers.FloatField(allow_null=True)


class ClusterCallTimesSerializer(serializers.Serializer):
    cluster = serializers.CharField(source="cluster_name")
    points = CallTimePointSerializer(many=True, help_text="One per bin, in order.")


class StatsSerializer(serializers.Serializer):
    scope = serializers.ChoiceField(
        choices=["all", "own"], help_text="all: everyone's jobs; own: the token's user's."
    )
    period = serializers.ChoiceField(choices=list(PERIODS))
    bin_seconds = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    bins = OutcomeBinSerializer(many=True)
    failures = ClusterFailuresSerializer(
        many=True,
        help_text="The clusters with a job in the period, worst now first: by the rate over "
        "the last hour (clusters with none sent in it last), then the period's, then name.",
    )
    call_times = ClusterCallTimesSerializer(
        many=True, help_text="The clusters with a call in the period, by name."
    )
    version = serializers.CharField(help_text="Changes whenever any number above does.")


ACTION_FILTER = OpenApiParameter(
    "action",
    ACTION,
    OpenApiParameter.QUERY,
    description="An action's name (any case) or its number.",
)


class Stats(APIView):
    """Jobs per bin by outcome, failure rate per cluster and call times (claim to end, p50
    and p95) per cluster, over the last 24 hours, 7 or 30 days, optionally of one cluster and
    one action. Read from per-hour counts kept as jobs end, so it answers fast whatever the
    number of jobs. Times are UTC."""

    @operation(
        operation_id="stats_retrieve",
        summary="Get the Overview's numbers",
        tag="jobs",
        parameters=[StatsFilterSerializer, ACTION_FILTER],
        responses={200: StatsSerializer},
    )
    def get(self, request: Request) -> Response:
        filters = StatsFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        everyone = request.user.has_perm("jobs.view_all_jobs")
        overview = overview_stats(
            period=filters.validated_data["period"],
            cluster_id=filters.validated_data.get("cluster"),
            action=filters.validated_data.get("action"),
            user_id=None if everyone else request.user.pk,
        )
        return Response(stats_data(overview, scope="all" if everyone else "own"))


def stats_data(overview: Overview, *, scope: str) -> dict:
    """What StatsSerializer makes of `overview`, written directly: the serializer's fields
    cost a call each for 700 values at 30 days, a third of the answer's time. Times are ISO
    8601 in the current zone, "Z" for UTC, as DRF writes them."""
    zone = timezone.get_current_timezone()

    def iso(moment: datetime) -> str:
        text = moment.astimezone(zone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    def real(value: float | None) -> float | None:
        return None if value is None else float(value)

    return {
        "scope": scope,
        "period": overview.period,
        "bin_seconds": overview.bin_seconds,
        "start": iso(overview.start),
        "end": iso(overview.end),
        "bins": [
            {
                "start": iso(b.start),
                "end": iso(b.end),
                "counts": {outcome: int(b.counts[outcome]) for outcome in OUTCOMES},
                "total": b.total,
            }
            for b in overview.bins
        ],
        "failures": [
            {
                "cluster": f.cluster_name,
                "sent": f.sent,
                "failed": f.failed,
                "sent_last_hour": f.sent_last_hour,
                "failed_last_hour": f.failed_last_hour,
                "rate": real(f.rate),
                "rate_last_hour": real(f.rate_last_hour),
            }
            for f in overview.failures
        ],
        "call_times": [
            {
                "cluster": times.cluster_name,
                "points": [
                    {
                        "start": iso(p.start),
                        "end": iso(p.end),
                        "calls": p.calls,
                        "p50_ms": real(p.p50_ms),
                        "p95_ms": real(p.p95_ms),
                    }
                    for p in times.points
                ],
            }
            for times in overview.call_times
        ],
        "version": overview.version,
    }
