from django.contrib import admin

from accounts.models import Identity
from lib.admin import CheckedModelAdmin


@admin.register(Identity)
class IdentityAdmin(CheckedModelAdmin):
    """Who each user is at the identity provider: written by sign-ins through it, read here.
    Making a deactivated user active again is done on the user's own page."""

    list_display = ["user", "subject", "issuer", "last_signed_in_at", "suspended_at"]
    list_filter = ["issuer"]
    search_fields = ["user__username", "subject"]
    readonly_fields = [*list_display, "created_at"]
    fields = readonly_fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
