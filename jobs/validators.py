"""Checks on values that come from people, shared by every interface that accepts them."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError


def validate_cluster_base_url(value: str) -> None:
    """Refuse a cluster base URL that is not http(s) or names a host outside the allowed list.

    The list is `TMS_ALLOWED_CLUSTER_HOSTS`, read at each call; when it is empty any host is
    allowed. Host names are compared without case and without the port.
    """
    # Lower case only, as the database's check constraint on Cluster.base_url requires.
    if not value.startswith(("http://", "https://")):
        raise ValidationError(
            "The base URL must start with http:// or https://.", code="cluster_url_scheme"
        )
    try:
        host = urlsplit(value).hostname
    except ValueError:
        host = None
    if not host:
        raise ValidationError("The base URL must name a valid host.", code="cluster_url_host")
    allowed = [name.lower() for name in settings.TMS_ALLOWED_CLUSTER_HOSTS]
    if allowed and host not in allowed:
        raise ValidationError(
            "The host %(host)s is not allowed for clusters (TMS_ALLOWED_CLUSTER_HOSTS allows: "
            "%(allowed)s).",
            code="cluster_url_host_not_allowed",
            params={"host": host, "allowed": ", ".join(allowed)},
        )
