"""The dashboard's URLs and a stand-in for the company provider's sign-in (`oidc_login`), so
that the sign-in page can be shown as it is with SSO on: the page only links to it."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from tmsdash.urls import handler400, handler404, handler500, urlpatterns

__all__ = ["handler400", "handler404", "handler500", "urlpatterns"]


def provider_sign_in(request: HttpRequest) -> HttpResponse:
    return HttpResponse("to the provider", status=501)


urlpatterns = [
    path("accounts/oidc/login/", provider_sign_in, name="oidc_login"),
    *urlpatterns,
]
