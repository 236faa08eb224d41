"""The dashboard's URLs and one more: a view that changes the session and leaves its saving,
a write, to the session middleware after the view, where a database fault escapes no view."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from tmsdash.urls import handler400, handler404, handler500, urlpatterns

__all__ = ["handler400", "handler404", "handler500", "urlpatterns"]


def remember(request: HttpRequest) -> HttpResponse:
    request.session["remembered"] = True
    return HttpResponse("remembered")


urlpatterns = [path("remember/", remember), *urlpatterns]
