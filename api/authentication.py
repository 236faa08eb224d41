"""How the API knows its caller: `Authorization: Bearer <personal API token>` (api.tokens)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.permissions import SAFE_METHODS, BasePermission

from api.tokens import token_check

# Every refusal says the same, whatever was wrong (api.problems answers all of them alike).
REFUSED = "A valid API token is required: Authorization: Bearer <token>."


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        header = get_authorization_header(request).decode("latin-1")
        scheme, _, secret = header.partition(" ")
        # The same check with or without a token, so that no refusal is quicker than another.
        token = token_check(secret.strip() if scheme.lower() == "bearer" else "")
        if not header:
            return None
        if token is None:
            raise AuthenticationFailed(REFUSED)
        return (token.user, token)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="tmsdash"'


class TokenScope(BasePermission):
    """A token's user, as the dashboard knows them; a read-only token only reads."""

    message = "This token is read-only: it cannot submit, retry or cancel."

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            raise NotAuthenticated(REFUSED)
        return request.method in SAFE_METHODS or not request.auth.read_only


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Describes api.authentication.BearerTokenAuthentication in the schema (registered by
    being defined, with the authentication class)."""

    target_class = "api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token: Authorization: Bearer <token>.",
        }
