from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_safe

from ops.health import health_report
from ops.metrics import metrics_text

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and monitors, without sign-in: 200 when this host can serve, else 503
    with the reason. Tells nothing about jobs but their number."""
    healthy, report = health_report()
    return JsonResponse(report, status=200 if healthy else 503)


@never_cache
@require_safe
@sensitive_variables("presented", "expected")
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, for a scraper holding the bearer token TMS_METRICS_TOKEN."""
    expected = settings.TMS_METRICS_TOKEN
    if not expected:
        return HttpResponse(
            "Metrics are off: set TMS_METRICS_TOKEN to turn them on.\n",
            status=404,
            content_type="text/plain; charset=utf-8",
        )
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not constant_time_compare(presented.strip(), expected):
        response = HttpResponse(
            "A bearer token is required (Authorization: Bearer <TMS_METRICS_TOKEN>).\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="tmsdash metrics"'
        return response
    return HttpResponse(metrics_text(), content_type=PROMETHEUS_TEXT)
