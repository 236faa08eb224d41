"""Hostile input gets a clear answer and writes nothing, on SQLite and PostgreSQL: never a 500."""

from __future__ import annotations

import io
import zipfile
from urllib.parse import quote_plus, urlencode

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape
from model_bakery import baker

from jobs.models import Job, JobCustomer
from jobs.views.common import customer_history_url
from tests.fresh_settings import start
from tests.helpers import TOKEN, confirm_review, make_user, row_counts


@pytest.fixture
def auditor_client(client, db):
    client.force_login(make_user("aud", "Auditors", is_staff=True))
    client.raise_request_exception = False
    return client


@pytest.mark.parametrize(
    "query",
    [
        {"q": "C1\x00"},
        {"q": "\x00"},
        {"status": "FAILED\x00"},
        {"operator": "op1\x00"},
        {"cluster": "1\x00"},
        {"action": "1\x00"},
        {"created_from": "2026-01-01\x00"},
        {"page": "2\x00"},
        {"q": "\x01\x1b[31m"},
    ],
)
def test_control_characters_in_the_jobs_list_are_answered_without_error(
    auditor_client, operator, cluster, query
):
    baker.make(Job, user=operator, cluster=cluster, action=1)
    before = row_counts()
    for name in ("job_list", "job_export"):
        response = auditor_client.get(reverse(name), query)
        assert response.status_code in (200, 400), (name, response.status_code)
    assert row_counts() == before


@pytest.mark.parametrize(
    "path", ["/customers/?cid=C1%00", "/customers/?cid=%00", "/jobs/?q=%00", "/jobs/%00/"]
)
def test_a_nul_in_a_path_or_query_is_a_bad_request(auditor_client, path):
    response = auditor_client.get(path)
    assert response.status_code == 400
    assert b"Bad request" in response.content


LEGACY_CIDS = ["AB/CD", "<script>alert(1)</script>", "a b", "50%", "x?y#z", "..", "é-ü"]


@pytest.mark.parametrize("cid", LEGACY_CIDS)
def test_legacy_customer_ids_display_and_link_everywhere(auditor_client, operator, cluster, cid):
    job = baker.make(Job, user=operator, cluster=cluster, action=1, customer_count=1)
    JobCustomer.objects.create(job=job, cid=cid)

    page = auditor_client.get(reverse("job_detail", args=[job.pk]))
    assert page.status_code == 200
    link = customer_history_url(cid)
    assert f'href="{escape(link)}"'.encode() in page.content
    assert b"<script>alert(1)</script>" not in page.content

    history = auditor_client.get(link)
    assert history.status_code == 200
    assert str(job.pk).encode() in history.content

    search = auditor_client.get(reverse("job_list"), {"q": cid})
    assert search.status_code == 302
    assert search["Location"] == link
    assert link == "/customers/?cid=" + quote_plus(cid)


def xlsx_bytes() -> bytes:
    """A real Office Open XML spreadsheet's container: a zip of XML parts."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        book.writestr("xl/worksheets/sheet1.xml", "<worksheet><c><v>C1</v></c></worksheet>" * 50)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content",
    [
        xlsx_bytes(),
        b"C1\nC2\x00\x00\x00\nC3\n",  # valid UTF-8, but binary
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        bytes(range(256)),
    ],
)
def test_a_binary_upload_is_refused_as_not_a_csv_text_file(client, operator, cluster, content):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(operator)
    before = row_counts()
    upload = SimpleUploadedFile("customers.xlsx", content)
    response = client.post(
        reverse("set_action"),
        {
            "action": "1",
            "cluster": str(cluster.pk),
            "token": TOKEN,
            "idempotency_key": "k",
            "csv_file": upload,
        },
    )
    assert response.status_code == 200
    errors = response.context["form"].errors["csv_file"]
    assert any("not a CSV text file" in error for error in errors), errors
    assert row_counts() == before


LIMIT = 40_000


def typed(count: int) -> str:
    return "\r\n".join(f"{n:064d}" for n in range(count))


@pytest.fixture
def upload_limit(settings):
    """TMS_MAX_CIDS of 40,000 and the request size the settings derive from it: typed in full,
    that is more than Django's default limit of 2.5 MB."""
    result = start("settings.DATA_UPLOAD_MAX_MEMORY_SIZE", TMS_MAX_CIDS=str(LIMIT), SECRET_KEY="k")
    settings.TMS_MAX_CIDS = LIMIT
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = int(result.stdout)
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def post_typed(client, cluster, cids: str):
    form = {
        "action": "1",
        "cluster": str(cluster.pk),
        "cids": cids,
        "token": TOKEN,
        "idempotency_key": "typed",
    }
    # As a browser sends a form without a file: URL-encoded, each line break 6 bytes.
    return client.post(
        reverse("set_action"), urlencode(form), content_type="application/x-www-form-urlencoded"
    )


def test_typed_input_up_to_the_limit_is_accepted(client, operator, cluster, upload_limit):
    client.force_login(operator)
    response = confirm_review(client, post_typed(client, cluster, typed(LIMIT)))
    assert response.status_code == 302
    assert JobCustomer.objects.count() == LIMIT


def test_typed_input_beyond_the_limit_gets_a_clear_error(client, operator, cluster, upload_limit):
    client.force_login(operator)
    client.raise_request_exception = False
    before = row_counts()

    one_more = post_typed(client, cluster, typed(LIMIT + 1))
    assert one_more.status_code == 200
    assert f"the most one submission may hold is {LIMIT}" in str(one_more.context["form"].errors)

    far_more = post_typed(client, cluster, typed(LIMIT) + "\r\n" + "C" * upload_limit)
    assert far_more.status_code == 400
    assert b"larger than the dashboard accepts" in far_more.content
    assert f"at most {LIMIT:,} customer IDs".encode() in far_more.content
    assert row_counts() == before


def test_a_forged_or_expired_form_gets_the_dashboards_page(operator, cluster):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    response = client.post(reverse("set_action"), {"action": "1", "token": TOKEN})
    assert response.status_code == 403
    assert b"This form expired" in response.content
    assert b"TMS Dashboard" in response.content
