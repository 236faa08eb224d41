"""The product's URLs and, for bench/http_floor.py's server alone (floor_settings), a view that
answers a constant: Django's floor on the same settings."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from tmsdash.urls import handler400, handler404, handler500  # noqa: F401 (the product's)
from tmsdash.urls import urlpatterns as product


def constant(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("bench/constant", constant), *product]
