"""The audit log page (/audit/) and its CSV export (/audit/export.csv): for auditors only,
newest first, filtered, in keyset pages, bad filters refused with a clear error."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from model_bakery import baker

from audit.models import AuditEntry
from audit.services import audit_bulk_append
from jobs.models import JobCustomer
from ops import audit_pages
from tests.admin_helpers import make_auditor, make_job
from tests.helpers import row_counts

T0 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def entries(*rows: dict) -> None:
    audit_bulk_append([AuditEntry(**row) for row in rows])


def shown(response) -> list[int]:
    """The ids of the entries a page shows, in order."""
    html = response.content.decode()
    marker = 'data-entry-id="'
    return [int(part.split('"', 1)[0]) for part in html.split(marker)[1:]]


def exported(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


@pytest.fixture
def auditor_client(client, db):
    client.force_login(make_auditor())
    return client


@pytest.mark.parametrize("url", ["/audit/", "/audit/export.csv"])
def test_operators_get_403_and_the_signed_out_the_sign_in_page(client, operator, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")
    client.force_login(operator)
    assert client.get(url).status_code == 403


def test_the_header_links_the_page_for_auditors_only(client, operator):
    client.force_login(operator)
    assert 'href="/audit/"' not in client.get("/").content.decode()
    client.force_login(make_auditor())
    assert 'href="/audit/">Audit</a>' in client.get("/").content.decode()


def test_newest_first_with_the_job_linked_and_the_values_before_and_after(auditor_client):
    job = uuid.uuid4()
    entries(
        {"event": "job.failed", "job_id": job, "created_at": T0},
        {
            "event": "cluster.changed",
            "actor_username": "admin1",
            "ip_address": "10.0.0.7",
            "created_at": T0 + dt.timedelta(minutes=1),
            "details": {
                "cluster": "east",
                "before": {"url": "http://old.example"},
                "after": {"url": "http://new.example"},
            },
        },
    )
    response = auditor_client.get("/audit/")
    html = response.content.decode()
    assert response.status_code == 200
    # The auditor's own sign-in is the newest.
    login, newest, oldest = AuditEntry.objects.order_by("-created_at")
    assert login.event == "auth.login"
    assert shown(response) == [login.pk, newest.pk, oldest.pk]
    assert f'<a href="{reverse("job_detail", args=[job])}" class="mono">{job}</a>' in html
    assert '<time datetime="2026-03-01T12:01:00Z">2026-03-01 12:01:00 UTC</time>' in html
    assert "<details" in html and "Cluster changed" in html
    assert (
        '<tr><th scope="row">url</th><td>http://old.example</td><td>http://new.example</td></tr>'
        in html
    )
    assert "<dt>cluster</dt><dd>east</dd>" in html and "<dd>10.0.0.7</dd>" in html


@pytest.fixture
def varied(db):
    """Entries that differ in one filter each from the first."""
    job = make_job()
    other_job = make_job()
    baker.make(JobCustomer, job=job, cid="CUST-1")
    baker.make(JobCustomer, job=other_job, cid="CUST-2")
    entries(
        {"event": "job.failed", "actor_username": "op1", "job_id": job.pk, "created_at": T0},
        {"event": "job.succeeded", "actor_username": "op1", "job_id": job.pk, "created_at": T0},
        {"event": "job.failed", "actor_username": "op2", "job_id": job.pk, "created_at": T0},
        {"event": "job.failed", "actor_username": "op1", "job_id": other_job.pk, "created_at": T0},
        {
            "event": "job.failed",
            "actor_username": "op1",
            "job_id": job.pk,
            "created_at": T0 + dt.timedelta(days=2),
        },
    )
    return job


FILTERS = {
    "event": {"event": "job.succeeded"},
    "actor": {"actor": "op2"},
    "job": "other",
    "customer": {"customer": "CUST-2"},
    "dates": {"created_from": "2026-03-03", "created_to": "2026-03-03"},
}


@pytest.mark.parametrize("name", FILTERS)
def test_each_filter_narrows_the_page_and_the_export_alike(auditor_client, varied, name):
    params = FILTERS[name]
    if params == "other":
        other = AuditEntry.objects.filter(job_id__isnull=False).exclude(job_id=varied.pk).get()
        params = {"job": str(other.job_id)}
    expected = list(
        AuditEntry.objects.filter(
            pk__in=[e.pk for e in AuditEntry.objects.all() if _matches(e, name, varied)]
        ).values_list("pk", flat=True)
    )
    assert len(expected) == 1
    page = auditor_client.get("/audit/", params)
    assert page.status_code == 200 and shown(page) == expected
    export = exported(auditor_client.get("/audit/export.csv", params))
    assert [int(row[0]) for row in export[1:]] == expected
    assert f"export.csv?{page.context['query']}" in page.content.decode().replace("&amp;", "&")


def _matches(entry: AuditEntry, name: str, job) -> bool:
    return {
        "event": entry.event == "job.succeeded",
        "actor": entry.actor_username == "op2",
        "job": entry.job_id not in (None, job.pk),
        "customer": entry.job_id not in (None, job.pk),
        "dates": T0 < entry.created_at < T0 + dt.timedelta(days=3),
    }[name]


def test_the_dates_are_whole_days_in_the_time_zone(auditor_client, settings):
    settings.TIME_ZONE = "Europe/Paris"
    # 23:30 UTC on 1 March is 00:30 on 2 March in Paris.
    entries({"event": "job.failed", "created_at": dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)})
    assert (
        len(
            shown(
                auditor_client.get(
                    "/audit/", {"created_from": "2026-03-02", "created_to": "2026-03-02"}
                )
            )
        )
        == 1
    )
    assert shown(auditor_client.get("/audit/", {"created_to": "2026-03-01"})) == []


def test_keyset_pages_walk_every_entry_once_both_ways_keeping_the_filters(
    auditor_client, monkeypatch
):
    monkeypatch.setattr(audit_pages, "ENTRIES_PER_PAGE", 4)
    # Ten entries at the same moment, which only the id orders, among others.
    entries(
        *(
            {
                "event": "job.failed",
                "created_at": T0 + dt.timedelta(seconds=n // 10 if n < 10 else n),
            }
            for n in range(23)
        ),
        {"event": "job.succeeded", "created_at": T0},
    )
    wanted = list(
        AuditEntry.objects.filter(event="job.failed")
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    )
    pages, response = [], auditor_client.get("/audit/", {"event": "job.failed"})
    while True:
        pages.append(shown(response))
        older = response.context["page"].older
        if older is None:
            break
        assert "event=job.failed&older=" in response.content.decode().replace("&amp;", "&")
        response = auditor_client.get("/audit/", {"event": "job.failed", "older": older})
    assert [pk for page in pages for pk in page] == wanted
    assert [len(page) for page in pages] == [4, 4, 4, 4, 4, 3]
    back = []
    while (newer := response.context["page"].newer) is not None:
        response = auditor_client.get("/audit/", {"event": "job.failed", "newer": newer})
        back.append(shown(response))
    assert back == pages[-2::-1]


def test_a_page_is_one_query_however_deep(auditor_client, monkeypatch):
    monkeypatch.setattr(audit_pages, "ENTRIES_PER_PAGE", 2)
    entries(
        *({"event": "job.failed", "created_at": T0 + dt.timedelta(seconds=n)} for n in range(9))
    )
    first = auditor_client.get("/audit/")
    older = first.context["page"].older
    with CaptureQueriesContext(connection) as queries:
        auditor_client.get("/audit/", {"older": older})
    reads = [q["sql"] for q in queries if "audit_auditentry" in q["sql"]]
    assert len(reads) == 1 and "OFFSET" not in reads[0].upper()


BAD = [
    ({"event": "job.exploded"}, "Select a valid choice"),
    ({"created_from": "2026-02-30"}, "Enter a valid date"),
    ({"created_from": "2026-03-02", "created_to": "2026-03-01"}, "is before"),
    ({"job": "not-a-uuid"}, "Enter a valid UUID"),
]


@pytest.mark.parametrize(("params", "message"), BAD)
def test_bad_filters_get_a_clear_error_on_the_page_and_the_export(auditor_client, params, message):
    entries({"event": "job.failed", "created_at": T0})
    before = row_counts()
    page = auditor_client.get("/audit/", params)
    assert page.status_code == 400 and message in page.content.decode()
    assert shown(page) == []
    export = auditor_client.get("/audit/export.csv", params)
    assert export.status_code == 400 and not export.streaming
    assert message in export.content.decode() and "nothing exported" in export.content.decode()
    assert row_counts() == before


@pytest.mark.parametrize(
    "cursor",
    ["x", "1_", "_1", "99999999999999999999999_1", "1_99999999999999999999999", "\u0661_1"],
)
def test_a_cursor_not_handed_out_is_a_clear_400(auditor_client, cursor):
    for direction in ("older", "newer"):
        response = auditor_client.get("/audit/", {direction: cursor})
        assert response.status_code == 400
        assert "Not a page of this list" in response.content.decode()


def test_the_export_is_formula_safe_with_every_column(auditor_client):
    job = uuid.uuid4()
    entries(
        {
            "event": "auth.login_failed",
            "actor_username": '=HYPERLINK("http://evil")',
            "job_id": job,
            "ip_address": "192.0.2.1",
            "details": {"reason": "-1+1"},
            "created_at": T0,
        },
        {"event": "legacy.t-enable", "actor_username": "@sum", "created_at": T0},
    )
    # The month of the entries: not the auditor's own sign-in.
    response = auditor_client.get("/audit/export.csv", {"created_to": "2026-03-31"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="tmsdash-audit-')
    rows = exported(response)
    assert rows[0] == audit_pages.CSV_HEADER
    first, second = AuditEntry.objects.order_by("-id")[1], AuditEntry.objects.order_by("-id")[0]
    assert rows[1:] == [
        [
            str(second.pk),
            "2026-03-01T12:00:00+00:00",
            "legacy.t-enable",
            "legacy.t-enable",
            "'@sum",
            "",
            "",
            "{}",
        ],
        [
            str(first.pk),
            "2026-03-01T12:00:00+00:00",
            "auth.login_failed",
            "Sign-in failed",
            '\'=HYPERLINK("http://evil")',
            str(job),
            "192.0.2.1",
            '{"reason": "-1+1"}',
        ],
    ]


def test_the_export_streams_its_entries_from_one_query_read_in_chunks(auditor_client, monkeypatch):
    monkeypatch.setattr(audit_pages, "EXPORT_CHUNK", 3)
    entries(
        *({"event": "job.failed", "created_at": T0 + dt.timedelta(seconds=n)} for n in range(10))
    )
    with CaptureQueriesContext(connection) as queries:
        response = auditor_client.get("/audit/export.csv")
        assert response.streaming
        # Nothing is read before the body is: the header row comes first, then the entries.
        assert not [q for q in queries if "audit_auditentry" in q["sql"]]
        body = iter(response.streaming_content)
        next(body)
        lines = list(body)
    reads = [q["sql"] for q in queries if "audit_auditentry" in q["sql"]]
    # The ten and the auditor's own sign-in.
    assert len(lines) == 11 and len(reads) == 1 and "LIMIT" not in reads[0].upper()
