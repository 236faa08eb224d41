"""The authentication backend of sessions made through the identity provider."""

from __future__ import annotations

from accounts.backends import OneReadPermissions


class ProviderBackend(OneReadPermissions):
    """Finds the user of a session made through the provider (an active one only, as Django's
    own backend does); it checks no password: the provider signs these users in
    (accounts.views.provider). Permissions as accounts.backends reads them."""

    def authenticate(self, request, **credentials):
        return None
