"""The API tokens page of the operator UI, included at accounts/api-tokens/."""

from django.urls import path

from api import pages

urlpatterns = [
    path("", pages.api_tokens, name="api_tokens"),
    path("<int:pk>/revoke/", pages.api_token_revoke, name="api_token_revoke"),
]
