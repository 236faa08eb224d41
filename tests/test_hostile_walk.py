"""Every URL of the web pages, the admin and the API, as each role, with hostile values in the
path, the query, form fields and JSON bodies: never a 5xx, and nothing written.

The URLs come from walking the resolver, so a new page, admin or endpoint is covered without
touching this file. Each role's requests run on one database; the rows of every product table
are counted before and after each URL's requests.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from model_bakery import baker

from api.models import ApiRateWindow
from api.tokens import token_create, token_revoke
from audit.models import AuditEntry
from audit.services import audit_bulk_append
from jobs.models import Job, JobCustomer
from notifications.models import Notice
from tests.admin_helpers import make_superuser
from tests.helpers import make_user, row_counts

# Digits of other scripts (str.isdigit() is true, int() refuses or takes them), numbers too large
# for any column, negative, NUL and other control characters, other types' spellings.
HOSTILE = [
    "²",
    "٣",
    "৪",  # noqa: RUF001
    "99999999999999999999999",
    "-1",
    "9" * 5000,
    "1\x00",
    "\x01\x1b[31m\r\n",
    "1e309",
    "NaN",
    "[]",
    "é" * 300,
]
# One value in each path segment an URL takes as text: these are the ones that parse.
HOSTILE_IN_PATH = ["²", "-1", "99999999999999999999999", "1\x00", "\x1b", " "]

# Converters whose segments take any text.
TEXT = ("str", "path")
# The query parameters and form fields the product reads anywhere, with a date drill-down.
PARAMETERS = [
    "q",
    "status",
    "action",
    "cluster",
    "operator",
    "customer",
    "cid",
    "created_from",
    "created_to",
    "created_after",
    "created_before",
    "page",
    "page_size",
    "cursor",
    "wait",
    "failed",
    "part",
    "v",
    "event",
    "actor",
    "job",
    "after",
    "before",
    "older",
    "newer",
    "http_status",
    "o",
    "p",
    "e",
    "all",
    "_changelist_filters",
    "next",
    "created_at__year",
    "created_at__month",
    "created_at__day",
    "created_at__gte",
]
FIELDS = [
    "action",
    "cluster",
    "cids",
    "token",
    "idempotency_key",
    "step",
    "seal",
    "from_csv",
    "confirm_unknown",
    "confirm_again",
    "name",
    "expires_days",
    "read_only",
    "clusters",
    "actions",
    "own_jobs",
    "all_jobs",
    "successes",
    "username",
    "password",
    "old_password",
    "new_password1",
    "new_password2",
    "email",
    "password1",
    "password2",
    "_selected_action",
    "index",
    "select_across",
    "_save",
    "base_url",
]
JSON_FIELDS = ["action", "cluster", "cids", "cluster_token", "confirm_unknown", "confirm_again"]


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


JSON_BODIES = [
    deep(100_000),
    '{"cids": ' + deep(500) + "}",
    "[]",
    "1",
    '"x"',
    "null",
    '{"action": NaN}',
    '{"cids": ["ok", ""]}',
    # Every field of another type, and numbers no column holds.
    '{"action": [], "cluster": {}, "cids": [1, null, true, {}], "cluster_token": 12,'
    ' "confirm_unknown": "x", "confirm_again": []}',
    '{"action": 1e309, "cluster": -1, "cids": [99999999999999999999999], "cluster_token": 1.5}',
    "\x00",
    b"\xff\xfe",
]

# Bookkeeping, not input: the API's per-minute request windows, and what a sign-in attempt
# records by design (tests/test_signin_throttling.py).
UNCOUNTED = {ApiRateWindow._meta.label}
SIGN_IN_RECORDS = {
    "axes.AccessAttempt",
    "axes.AccessFailureLog",
    "ops.Counter",
    AuditEntry._meta.label,
}

# What a superuser writes with these values by right: a group may be named "²", and a POST to
# an admin delete page is its confirmation, whatever else it carries.
SUPERUSER_WRITES = {"admin/auth/group/add/"}


def url_patterns(patterns=None, prefix: str = ""):
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from url_patterns(entry.url_patterns, prefix + str(entry.pattern))
        else:
            assert isinstance(entry, URLPattern)
            yield prefix + str(entry.pattern), entry.name


def counts() -> dict[str, int]:
    return {k: v for k, v in row_counts().items() if k not in UNCOUNTED}


def paths(route: str, objects: dict[str, str]) -> list[str]:
    """The route with real objects in its segments, then with each hostile value in turn."""
    model_match = re.match(r"\^?admin/(\w+)/(\w+)/", route)
    admin_object = objects.get(".".join(model_match.groups())) if model_match else None

    def real(name: str, kind: str) -> str:
        if kind == "uuid":
            return objects["job"] if name == "pk" else objects["batch"]
        if kind == "int":
            return objects["token"]
        if name == "object_id":
            return admin_object or objects["user"]
        return {"id": objects["job"], "cid": "C1", "content_type_id": "1"}.get(name, "x")

    segment = re.compile(r"<(?:(\w+):)?(\w+)>|\(\?P<(\w+)>[^)]*\)")

    def fill(value_for) -> str:
        def one(match: re.Match) -> str:
            if match[3]:
                return {"app_label": "jobs", "url": "nowhere/"}[match[3]]
            return value_for(match[2], match[1] or "str")

        return segment.sub(one, route).lstrip("^").rstrip("$")

    filled = ["/" + fill(real)]
    if segment.search(route):
        filled += [
            "/"
            + fill(lambda name, kind, v=value: v if kind in ("str", "path") else real(name, kind))
            for value in HOSTILE_IN_PATH
        ]
    return list(dict.fromkeys(filled))


@pytest.fixture
def world(db, settings, cluster):
    settings.TMS_API_READS_PER_MINUTE = settings.TMS_API_SUBMITS_PER_MINUTE = 10**6
    # A sign-in with an unknown name still hashes a password, to take as long as a known one.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    operator = make_user("op1", "Operators")
    auditor = make_user("aud1", "Auditors", is_staff=True)
    admin = make_superuser()
    batch = uuid.uuid4()
    job = baker.make(
        Job, user=operator, cluster=cluster, action=1, status=Job.Status.SUCCESS, batch_id=batch
    )
    customer = JobCustomer.objects.create(job=job, cid="C1")
    notice = Notice.objects.create(
        event_id=uuid.uuid4(), event="job.failed", channel="email", user=operator, job=job
    )
    entry = AuditEntry(event="job.submitted", actor=operator, job_id=job.pk)
    audit_bulk_append([entry])
    objects = {
        "token": "1",
        "job": str(job.pk),
        "batch": str(batch),
        "user": str(operator.pk),
        "jobs.job": str(job.pk),
        "jobs.failedjob": str(job.pk),
        "jobs.jobcustomer": str(customer.pk),
        "jobs.cluster": str(cluster.pk),
        "audit.auditentry": str(entry.pk),
        "notifications.notice": str(notice.pk),
        "auth.user": str(operator.pk),
        "auth.group": str(Group.objects.first().pk),
    }
    return {"anonymous": None, "operator": operator, "auditor": auditor, "admin": admin}, objects


def client_for(user: User | None, objects: dict[str, str]) -> tuple[Client, dict[str, str]]:
    client = Client(raise_request_exception=False)
    headers = {}
    if user is not None:
        client.force_login(user)
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token_create(user=user, name='walk').secret}"
        # Revoked already, for the page that revokes one: revoking it again writes nothing.
        revoked = token_create(user=user, name="revoked").token
        token_revoke(token=revoked, actor=user)
        objects["token"] = str(revoked.pk)
    return client, headers


def refused(response) -> bool:
    """Answered before any input is read: signed out, not allowed, or not this method."""
    if response.status_code == 302:
        return "/login/" in response["Location"]
    return response.status_code in (401, 403, 405)


def hostile_requests(path: str, send, *, get: bool, post: bool) -> None:
    """Each hostile value in every query parameter, form field and (for the API) JSON field,
    and odd JSON bodies, by each method the URL did not refuse."""
    if get:
        for value in HOSTILE:
            send("get", path, {name: value for name in PARAMETERS})
    if not post:
        return
    for value in HOSTILE:
        send("post", path, {name: value for name in FIELDS})
    if path.startswith("/api/"):
        for value in HOSTILE:
            body = json.dumps({name: value for name in JSON_FIELDS} | {"cids": [value]})
            send("post", path, body, HTTP_IDEMPOTENCY_KEY=value[:200])
        for body in JSON_BODIES:
            send("post", path, body, HTTP_IDEMPOTENCY_KEY="k")


@pytest.mark.parametrize("role", ["anonymous", "operator", "auditor", "admin"])
def test_no_url_answers_a_hostile_request_with_a_5xx_or_writes_a_row(world, role):
    users, objects = world
    client, auth = client_for(users[role], objects)
    failures = []

    def send(method: str, url: str, data, **headers):
        if url.startswith("/api/"):
            headers |= auth
        if not isinstance(data, dict):
            headers["content_type"] = "application/json"
        response = getattr(client, method)(url, data, **headers)
        # The health check's 503 reports the worker that this test does not run.
        if response.status_code >= 500 and url != "/healthz":
            shown = {k: v[:20] for k, v in data.items()} if isinstance(data, dict) else data
            failures.append((response.status_code, method, url, str(shown)[:200]))
        return response

    for route, name in url_patterns():
        if name == "logout":
            continue  # Signing out is its one write: the session's row.
        first, *others = paths(route, objects)
        # Without input first: what that writes (an empty form saved) is no hostile value's.
        get, post = (not refused(send(method, first, {})) for method in ("get", "post"))
        before = counts()
        if name == "healthz":
            # It reads no input, and takes a second to find that no worker runs here.
            send("get", first, {"q": HOSTILE[0]})
        else:
            hostile_requests(first, send, get=get, post=post)
        for path in others:
            send("get", path, {})
            send("post", path, {})
        after = counts()
        if name == "login":
            after = {k: v for k, v in after.items() if k not in SIGN_IN_RECORDS}
            before = {k: v for k, v in before.items() if k not in SIGN_IN_RECORDS}
        written = {k: after[k] - before[k] for k in before if after[k] != before[k]}
        by_right = route in SUPERUSER_WRITES or route.endswith("/delete/")
        if written and not (role == "admin" and by_right):
            failures.append(("rows", route, written))
    assert not failures, "\n".join(map(str, failures[:40]))
