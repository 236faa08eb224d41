"""Where an operator's token may be sent: the rules for a cluster's endpoint, in one place.

Every way of writing a cluster (the admin, `seed_demo`, the API) runs them through
`Cluster.clean()`, and the client runs them again at call time (jobs.upstream), where it also
checks the address it actually connected to. The endpoint called is the base URL followed by
the action path; it must name the base URL's scheme, host and port, and that host must be
allowed (TMS_ALLOWED_CLUSTER_HOSTS). Link-local and cloud metadata addresses are refused unless
TMS_ALLOW_LINK_LOCAL_CLUSTERS is on.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

# Link-local addresses, where clouds serve instance metadata and credentials
# (169.254.169.254, fd00:ec2::254 on AWS).
LINK_LOCAL_NETWORKS = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)
_DOT_SEGMENT = re.compile(r"(^|/)\.\.?(/|$)")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def address_refused(address: str) -> bool:
    """Whether the dashboard refuses to call this IP address: link-local or cloud metadata,
    unless TMS_ALLOW_LINK_LOCAL_CLUSTERS is on. An IPv4 address mapped into IPv6 counts as
    itself."""
    if settings.TMS_ALLOW_LINK_LOCAL_CLUSTERS:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in LINK_LOCAL_NETWORKS)


def _split(url: str, rules: UrlRules) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        raise ValidationError(
            f"{rules.label} must name a valid host and port.", code=f"{rules.code}_host"
        ) from None
    return parts


@dataclass(frozen=True)
class UrlRules:
    """How the rules for an address the dashboard posts to read for one kind of endpoint."""

    label: str
    kind: str
    code: str
    hosts_setting: str
    userinfo_hint: str
    query_allowed: bool


CLUSTER_URL_RULES = UrlRules(
    label="The base URL",
    kind="clusters",
    code="cluster_url",
    hosts_setting="TMS_ALLOWED_CLUSTER_HOSTS",
    userinfo_hint=(
        "operators see it on every job. Give the cluster's credentials as the operators' token."
    ),
    query_allowed=False,
)


def validate_http_url(value: str, rules: UrlRules) -> None:
    """Refuse a URL that is not plain http(s) to an allowed, callable host.

    Refused: another scheme; no host; user information (`http://user:pw@host` would be shown
    wherever the URL is); a fragment, and a query unless the rules allow one; a host outside
    the allowed hosts setting (when set; compared without case and port); a link-local or
    metadata address. A name is not resolved here: what it resolves to when the call is made
    is what counts, and the client checks the address it connects to.
    """
    # Lower case only, as the database's check constraint on Cluster.base_url requires.
    if not value.startswith(("http://", "https://")):
        raise ValidationError(
            f"{rules.label} must start with http:// or https://.", code=f"{rules.code}_scheme"
        )
    parts = _split(value, rules)
    if not parts.hostname:
        raise ValidationError(f"{rules.label} must name a valid host.", code=f"{rules.code}_host")
    if "@" in parts.netloc:
        raise ValidationError(
            f"{rules.label} may not hold a user name or password: {rules.userinfo_hint}",
            code=f"{rules.code}_userinfo",
        )
    if rules.query_allowed and (parts.fragment or value.endswith("#")):
        raise ValidationError(
            f"{rules.label} may not hold a fragment (#).", code=f"{rules.code}_fragment"
        )
    if not rules.query_allowed and (parts.query or parts.fragment or value.endswith(("?", "#"))):
        raise ValidationError(
            f"{rules.label} may not hold a query (?) or fragment (#).", code=f"{rules.code}_query"
        )
    host = parts.hostname
    allowed = [name.lower() for name in getattr(settings, rules.hosts_setting)]
    if allowed and host not in allowed:
        raise ValidationError(
            "The host %(host)s is not allowed for %(kind)s (%(setting)s allows: %(allowed)s).",
            code=f"{rules.code}_host_not_allowed",
            params={
                "host": host,
                "kind": rules.kind,
                "setting": rules.hosts_setting,
                "allowed": ", ".join(allowed),
            },
        )
    if address_refused(host):
        raise ValidationError(
            "The host %(host)s is a link-local or cloud metadata address; %(kind)s may not "
            "use one unless TMS_ALLOW_LINK_LOCAL_CLUSTERS is on.",
            code=f"{rules.code}_link_local",
            params={"host": host, "kind": rules.kind},
        )


def validate_cluster_base_url(value: str) -> None:
    """The rules of `validate_http_url` for a cluster's base URL, which holds no query."""
    validate_http_url(value, CLUSTER_URL_RULES)


def validate_action_path(value: str) -> None:
    """Refuse an action path that could lead the call anywhere but the base URL's host.

    A path is absolute (`/...`), without `@`, `\\`, a scheme, `//` at its start, dot segments,
    a fragment, white space or control characters.
    """
    problem = ""
    if not value.startswith("/"):
        problem = "must start with /"
    elif value.startswith("//"):
        problem = "may not start with //"
    elif "@" in value or "\\" in value:
        problem = "may not hold @ or \\"
    elif "://" in value:
        problem = "may not hold a scheme"
    elif "#" in value:
        problem = "may not hold a fragment (#)"
    elif _DOT_SEGMENT.search(value.split("?", 1)[0]):
        problem = "may not hold . or .. segments"
    elif any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        problem = "may not hold spaces or control characters"
    if problem:
        raise ValidationError(f"The action path {problem}.", code="cluster_action_path")


def cluster_endpoint(base_url: str, action_path: str) -> str:
    """The URL a Set Action is posted to."""
    return base_url + action_path


def validate_cluster_endpoint(base_url: str, action_path: str) -> None:
    """Both parts valid: then the endpoint they make names the base URL's scheme, host and
    port, since a valid path can neither start a new authority (`//`, `@`, `\\`, a scheme)
    nor climb out of the base (dot segments), and a valid base URL has no query or fragment
    for the path to land in. Raises ValidationError keyed by field ("base_url", "action_path").
    """
    errors: dict[str, list[ValidationError]] = {}
    for field, validate, value in (
        ("base_url", validate_cluster_base_url, base_url),
        ("action_path", validate_action_path, action_path),
    ):
        try:
            validate(value)
        except ValidationError as exc:
            errors[field] = [exc]
    if errors:
        raise ValidationError(errors)


def endpoint_key(base_url: str, action_path: str) -> tuple[str, str, int, str]:
    """What makes two endpoints one: scheme, host and port (the default one when not written)
    without case, and the path without repeated or trailing slashes."""
    parts = urlsplit(cluster_endpoint(base_url, action_path))
    path = re.sub(r"/+", "/", parts.path).rstrip("/")
    if parts.query:
        path += "?" + parts.query
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)
    return parts.scheme, (parts.hostname or "").lower(), port, path
