"""How the API knows its caller: `Authorization: Bearer <personal API token>` (api.tokens)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.permissions import SAFE_METHODS, BasePermission, DjangoModelPermissions

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


class AdminToken(DjangoModelPermissions):
    """An admin's token, for the endpoints that change who may do what (run grants): its owner
    holds the model permission of the view's model for the method (view to read, add to
    create, delete to delete; superusers hold all), and a write needs a token that is not
    read-only. Reused by any endpoint over a model that admins alone manage."""

    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            raise NotAuthenticated(REFUSED)
        if request.method not in SAFE_METHODS and request.auth.read_only:
            self.message = "This token is read-only: it cannot change anything."
            return False
        self.message = "This needs an administrator's token (the model's permissions)."
        return super().has_permission(request, view)


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
