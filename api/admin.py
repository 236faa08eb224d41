"""The admin for API tokens: a superuser sees everyone's and revokes them. Tokens are created
only through api.tokens (its secret shown once, on the user's page or by create_api_token);
the digest is never shown."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from api.models import ApiToken
from api.tokens import token_revoke
from audit.services import client_ip
from lib.admin import CheckedModelAdmin

SHOWN = (
    "user",
    "name",
    "prefix",
    "read_only",
    "can_approve",
    "created_at",
    "expires_at",
    "last_used_at",
)


@admin.register(ApiToken)
class ApiTokenAdmin(CheckedModelAdmin):
    list_display = (*SHOWN, "state")
    list_select_related = ("user",)
    list_filter = ("read_only", "can_approve")
    search_fields = ("name", "prefix", "user__username")
    fields = (*SHOWN, "revoked_at", "state")
    readonly_fields = fields
    actions = ["revoke"]

    @admin.display(description="state")
    def state(self, token: ApiToken) -> str:
        return token.state(timezone.now())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        # A revoked token stays listed, for its owner to see why a script stopped, until
        # housekeeping removes it (TMS_API_TOKENS_KEEP_DAYS; api.tokens.tokens_remove_ended).
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        # token_revoke's own rule: only a superuser revokes someone else's token.
        return request.user.is_superuser

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet) -> None:
        ip_address = client_ip(request)
        revoked = sum(
            token_revoke(token=token, actor=request.user, ip_address=ip_address)
            for token in queryset
        )
        already = len(queryset) - revoked
        self.message_user(
            request,
            f"Revoked {revoked} token(s); {already} already were.",
            messages.SUCCESS,
        )
