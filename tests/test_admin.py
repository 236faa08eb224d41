"""The admin's job lists and job pages: what they show, find, refuse and export."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.templatetags.static import static
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from model_bakery import baker

from jobs import admin as jobs_admin
from jobs.badges import status_badge
from jobs.models import Cluster, FailedJob, Job, JobCustomer
from lib.csvstream import csv_cell
from lib.pagination import CappedCountPaginator
from tests.admin_helpers import ago, at, make_auditor, make_job, make_superuser

JOBS = reverse("admin:jobs_job_changelist")
FAILED = reverse("admin:jobs_failedjob_changelist")
CUSTOMERS = reverse("admin:jobs_jobcustomer_changelist")


@pytest.fixture
def admin_user(db):
    """Replaces pytest-django's admin_user (behind admin_client) with one made faster."""
    return make_superuser()


def listed(response) -> list:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def change_url(job: Job) -> str:
    return reverse("admin:jobs_job_change", args=[job.pk])


@pytest.fixture
def auditor_client(client, db):
    client.force_login(make_auditor())
    return client


def test_admin_is_titled_tms_dashboard_administration(admin_client):
    response = admin_client.get(reverse("admin:index"))
    assert b"<title>Administration | TMS Dashboard administration</title>" in response.content
    assert b"TMS Dashboard administration</a></div>" in response.content


def test_failed_jobs_come_first_on_the_admin_index(admin_client):
    content = admin_client.get(reverse("admin:index")).content.decode()
    first_failed = content.index(f'href="{FAILED}"')
    assert first_failed < content.index(f'href="{reverse("admin:jobs_cluster_changelist")}"')
    assert first_failed < content.index(f'href="{JOBS}"')


def test_failed_jobs_also_come_first_on_the_jobs_app_index(admin_client):
    content = admin_client.get(reverse("admin:app_list", args=["jobs"])).content.decode()
    assert content.index(f'href="{FAILED}"') < content.index(f'href="{JOBS}"')


def test_failed_jobs_lists_only_failed_and_unknown_newest_first(admin_client, operator):
    old_failed = make_job(user=operator, status=Job.Status.FAILED, created_at=ago(30))
    unknown = make_job(user=operator, status=Job.Status.UNKNOWN, created_at=ago(20))
    new_failed = make_job(user=operator, status=Job.Status.FAILED, created_at=ago(10))
    make_job(user=operator, status=Job.Status.SUCCESS, created_at=ago(5))
    make_job(user=operator, status=Job.Status.IN_PROGRESS, created_at=ago(1))

    assert [job.pk for job in listed(admin_client.get(FAILED))] == [
        new_failed.pk,
        unknown.pk,
        old_failed.pk,
    ]


def test_jobs_lists_every_status_newest_first(admin_client, operator):
    jobs = [
        make_job(user=operator, status=status, created_at=ago(10 - n))
        for n, status in enumerate(Job.Status.values)
    ]
    assert [job.pk for job in listed(admin_client.get(JOBS))] == [j.pk for j in reversed(jobs)]


def test_failed_jobs_status_filter_offers_only_failed_and_unknown(admin_client, operator):
    failed = make_job(user=operator, status=Job.Status.FAILED)
    make_job(user=operator, status=Job.Status.UNKNOWN)

    response = admin_client.get(FAILED, {"status": "FAILED"})

    assert [job.pk for job in listed(response)] == [failed.pk]
    spec = next(f for f in response.context["cl"].filter_specs if f.title == "status")
    assert [value for value, _ in spec.lookup_choices] == ["FAILED", "UNKNOWN"]


def test_job_row_shows_its_columns(admin_client, operator, cluster):
    job = make_job(
        user=operator,
        cluster=cluster,
        action=Job.Action.PE_DIRECT,
        status=Job.Status.FAILED,
        http_status=502,
        customer_count=7,
    )
    content = admin_client.get(JOBS).content.decode()
    assert (
        f'<th class="field-short_id"><a href="{change_url(job)}">'
        f'<code title="{job.pk}">{str(job.pk)[:8]}</code></a></th>'
    ) in content
    for column, text in [
        ("operator", "op1"),
        ("action_name", "PE-Direct"),
        ("cluster_name", "eu1"),
        ("http_status", "502"),
        ("customers", "7"),
    ]:
        assert f'<td class="field-{column}">{text}</td>' in content
    assert '<th scope="col" class="sortable column-created sorted descending">' in content
    assert '<td class="field-created nowrap">' in content


@pytest.mark.parametrize("status", Job.Status.values)
def test_status_is_the_operator_uis_badge(admin_client, operator, status):
    job = make_job(user=operator, status=status)
    content = admin_client.get(JOBS).content.decode()
    assert str(status_badge(job)) in content
    assert f'class="badge badge-{status.lower()}"' in content
    assert static("css/badges.css") in content


def test_status_outside_the_known_ones_is_grey():
    badge = status_badge(Job(status="RETIRED"))
    assert 'class="badge badge-other"' in badge
    assert ">RETIRED</span>" in badge


def test_error_is_shortened_escaped_and_whole_on_hover(admin_client, operator):
    error = "<script>alert('x')</script> " + "the cluster said no. " * 10
    make_job(user=operator, status=Job.Status.FAILED, error_message=error)

    content = admin_client.get(JOBS).content.decode()

    assert "<script>alert" not in content
    assert (
        'title="&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; the cluster said no.' in content
    )
    shown = content.split('<td class="field-error_short">')[1].split("</td>")[0]
    assert shown.endswith("…</span>")
    assert len(shown.split(">", 1)[1]) < len(error)


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("status__exact", "FAILED"),
        ("action__exact", "5"),
        ("http_status", "503"),
        ("http_status", "none"),
    ],
)
def test_filters_keep_only_matching_jobs(admin_client, operator, param, value):
    match = make_job(
        user=operator, status=Job.Status.FAILED, action=Job.Action.PE_DIRECT, http_status=503
    )
    if value == "none":
        match = make_job(user=operator, status=Job.Status.UNKNOWN, http_status=None)
    make_job(user=operator, status=Job.Status.SUCCESS, action=Job.Action.PE_ENABLE, http_status=200)

    assert [job.pk for job in listed(admin_client.get(JOBS, {param: value}))] == [match.pk]


def test_cluster_and_operator_filters_keep_only_matching_jobs(admin_client, operator, cluster):
    other_user = baker.make("auth.User", username="op2")
    other_cluster = baker.make(Cluster, name="us1", base_url="http://127.0.0.1:9101")
    match = make_job(user=operator, cluster=cluster)
    make_job(user=other_user, cluster=cluster)
    make_job(user=operator, cluster=other_cluster)

    response = admin_client.get(
        JOBS, {"cluster__id__exact": cluster.pk, "user__id__exact": operator.pk}
    )

    assert [job.pk for job in listed(response)] == [match.pk]
    assert "operator" in [spec.title for spec in response.context["cl"].filter_specs]


def test_malformed_http_status_filter_is_refused(admin_client, operator):
    make_job(user=operator)
    response = admin_client.get(JOBS, {"http_status": "5xx"})
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")


def test_created_date_filter_keeps_the_jobs_of_that_period(admin_client, operator):
    recent = make_job(user=operator, created_at=ago(5))
    make_job(user=operator, created_at=at(2020, 1, 1))
    response = admin_client.get(
        JOBS, {"created_at__gte": str(ago(60)), "created_at__lt": str(ago(0))}
    )
    assert [job.pk for job in listed(response)] == [recent.pk]


def test_date_hierarchy_offers_the_years_from_first_to_last_job(admin_client, operator):
    make_job(user=operator, created_at=at(2023, 5, 1))
    make_job(user=operator, created_at=at(2025, 2, 3))

    links = admin_client.get(JOBS).context["cl"].date_hierarchy_links()

    assert [choice["title"] for choice in links["choices"]] == ["2023", "2024", "2025"]
    assert links["choices"][0]["link"] == "?created_at__year=2023"


def test_date_hierarchy_drills_down_to_months_and_days(admin_client, operator):
    make_job(user=operator, created_at=at(2025, 2, 3))
    make_job(user=operator, created_at=at(2025, 4, 9))
    make_job(user=operator, created_at=at(2025, 4, 11))

    year = admin_client.get(JOBS, {"created_at__year": "2025"})
    month = admin_client.get(JOBS, {"created_at__year": "2025", "created_at__month": "4"})

    months = year.context["cl"].date_hierarchy_links()
    assert [c["title"] for c in months["choices"]] == ["February 2025", "March 2025", "April 2025"]
    days = month.context["cl"].date_hierarchy_links()
    assert [c["title"] for c in days["choices"]] == ["April 9", "April 10", "April 11"]
    assert len(listed(month)) == 2
    assert 'href="?created_at__day=9&amp;created_at__month=4&amp;created_at__year=2025"' in (
        month.content.decode()
    )


def test_search_by_customer_id_finds_its_jobs(admin_client, operator):
    first, second, other = (make_job(user=operator) for _ in range(3))
    JobCustomer.objects.create(job=first, cid="CUST-42")
    JobCustomer.objects.create(job=second, cid="CUST-42")
    JobCustomer.objects.create(job=other, cid="CUST-420")

    found = listed(admin_client.get(JOBS, {"q": "CUST-42"}))

    assert {job.pk for job in found} == {first.pk, second.pk}


def test_search_by_customer_id_uses_the_customer_index_not_a_join(admin_client, operator):
    job = make_job(user=operator)
    JobCustomer.objects.create(job=job, cid="CUST-42")

    with CaptureQueriesContext(connection) as queries:
        assert listed(admin_client.get(JOBS, {"q": "CUST-42"})) == [job]

    customer_queries = [q["sql"] for q in queries if "jobs_jobcustomer" in q["sql"]]
    assert len(customer_queries) == 1
    assert customer_queries[0].startswith('SELECT "jobs_jobcustomer"."job_id"')
    assert "JOIN" not in customer_queries[0]


def test_search_by_a_customer_in_very_many_jobs_finds_them_all(admin_client, operator, monkeypatch):
    monkeypatch.setattr(jobs_admin, "CID_SEARCH_ID_LIST_MAX", 2)
    jobs = [make_job(user=operator) for _ in range(3)]
    for job in jobs:
        JobCustomer.objects.create(job=job, cid="CUST-7")
    make_job(user=operator)

    found = listed(admin_client.get(JOBS, {"q": "CUST-7"}))

    assert {job.pk for job in found} == {job.pk for job in jobs}


@pytest.mark.parametrize("length", [4, 8, 13, 36])
def test_search_by_job_id_prefix_finds_the_job(admin_client, operator, length):
    job = make_job(user=operator, id=uuid.UUID("3f2a9c41-7b1e-4d2a-9a55-0c6e1b2d3e4f"))
    make_job(user=operator, id=uuid.UUID("3f2b0000-0000-4000-8000-000000000000"))

    found = listed(admin_client.get(JOBS, {"q": str(job.pk)[:length]}))

    assert [j.pk for j in found] == [job.pk]


def test_search_by_job_id_ignores_case_and_dashes(admin_client, operator):
    job = make_job(user=operator, id=uuid.UUID("3f2a9c41-7b1e-4d2a-9a55-0c6e1b2d3e4f"))
    assert listed(admin_client.get(JOBS, {"q": "3F2A9C417B1E"})) == [job]


def test_search_by_operator_username_finds_their_jobs(admin_client, operator):
    mine = make_job(user=operator)
    make_job(user=baker.make("auth.User", username="op2"))
    assert listed(admin_client.get(JOBS, {"q": "op1"})) == [mine]


def test_search_by_legacy_id_is_exact(admin_client, operator):
    imported = make_job(user=operator, legacy_id="L-1234")
    make_job(user=operator, legacy_id="L-12345")
    assert listed(admin_client.get(JOBS, {"q": "L-1234"})) == [imported]


def test_search_that_matches_nothing_lists_nothing(admin_client, operator):
    job = make_job(user=operator, legacy_id="L-1")
    JobCustomer.objects.create(job=job, cid="CUST-1")
    assert listed(admin_client.get(JOBS, {"q": "nobody"})) == []


def test_search_with_two_words_finds_jobs_matching_both(admin_client, operator):
    both = make_job(user=operator)
    JobCustomer.objects.create(job=both, cid="CUST-1")
    only_customer = make_job(user=baker.make("auth.User", username="op2"))
    JobCustomer.objects.create(job=only_customer, cid="CUST-1")
    assert listed(admin_client.get(JOBS, {"q": "CUST-1 op1"})) == [both]


def test_search_in_failed_jobs_stays_within_failed_jobs(admin_client, operator):
    failed = make_job(user=operator, status=Job.Status.FAILED)
    succeeded = make_job(user=operator, status=Job.Status.SUCCESS)
    for job in (failed, succeeded):
        JobCustomer.objects.create(job=job, cid="CUST-9")
    assert [j.pk for j in listed(admin_client.get(FAILED, {"q": "CUST-9"}))] == [failed.pk]


@pytest.mark.parametrize("url", [JOBS, FAILED])
def test_jobs_cannot_be_added_changed_or_deleted_even_by_a_superuser(admin_client, operator, url):
    job = make_job(user=operator, status=Job.Status.FAILED, error_message="boom")
    model = "failedjob" if url == FAILED else "job"
    before = Job.objects.values().get(pk=job.pk)

    add = admin_client.post(reverse(f"admin:jobs_{model}_add"), {"status": "SUCCESS"})
    change = admin_client.post(
        reverse(f"admin:jobs_{model}_change", args=[job.pk]),
        {"status": "SUCCESS", "error_message": ""},
    )
    delete = admin_client.post(
        reverse(f"admin:jobs_{model}_delete", args=[job.pk]), {"post": "yes"}
    )
    bulk = admin_client.post(
        url, {"action": "delete_selected", ACTION_CHECKBOX_NAME: [job.pk], "post": "yes"}
    )

    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    assert bulk.status_code == 302
    assert Job.objects.count() == 1
    assert Job.objects.values().get(pk=job.pk) == before


def test_job_page_is_read_only(admin_client, operator):
    job = make_job(user=operator, status=Job.Status.FAILED)
    content = admin_client.get(change_url(job)).content.decode()
    assert 'name="_save"' not in content
    assert 'name="status"' not in content
    assert "deletelink" not in content


def test_job_page_shows_every_field():
    shown = {name for _, options in jobs_admin.JobAdmin.fieldsets for name in options["fields"]}
    # Fields shown through a display of their own.
    shown |= {"status", "action", "request_payload"}
    assert {f.name for f in Job._meta.concrete_fields} <= shown


def test_job_page_shows_its_request_as_escaped_json(admin_client, operator):
    job = make_job(user=operator, request_payload={"note": "<b>bold</b>", "cids": ["C1"]})
    content = admin_client.get(change_url(job)).content.decode()
    assert "{\n  &quot;cids&quot;: [\n    &quot;C1&quot;\n  ]," in content
    assert "&lt;b&gt;bold&lt;/b&gt;" in content


def test_job_page_shows_the_first_100_customers_and_links_to_the_rest(admin_client, operator):
    job = make_job(user=operator, customer_count=101)
    JobCustomer.objects.bulk_create(JobCustomer(job=job, cid=f"C{n:03d}") for n in range(101))

    content = admin_client.get(change_url(job)).content.decode()
    rest = f"{CUSTOMERS}?job={job.pk}"

    assert "<td>C099</td>" in content
    assert "<td>C100</td>" not in content
    assert f'<a href="{rest}">All 101 customers of this job</a>' in content
    customers = admin_client.get(rest)
    assert customers.context["cl"].result_count == 101


def test_job_page_with_few_customers_has_no_link(admin_client, operator):
    job = make_job(user=operator, customer_count=2)
    JobCustomer.objects.bulk_create(JobCustomer(job=job, cid=cid) for cid in ("C1", "C2"))
    content = admin_client.get(change_url(job)).content.decode()
    assert "<td>C1</td>" in content and "<td>C2</td>" in content
    assert f"{CUSTOMERS}?job=" not in content


def test_customer_list_of_a_job_is_read_only_and_off_the_index(admin_client, operator):
    job = make_job(user=operator)
    customer = JobCustomer.objects.create(job=job, cid="C1")

    response = admin_client.get(CUSTOMERS, {"job": job.pk})
    change = admin_client.post(
        reverse("admin:jobs_jobcustomer_change", args=[customer.pk]), {"cid": "C2"}
    )

    assert listed(response) == [customer]
    assert change.status_code == 403
    assert JobCustomer.objects.get().cid == "C1"
    assert f'href="{CUSTOMERS}"' not in admin_client.get(reverse("admin:index")).content.decode()


def export(client, url: str, jobs: list[Job]):
    return client.post(
        url, {"action": "export_csv", ACTION_CHECKBOX_NAME: [job.pk for job in jobs], "index": 0}
    )


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="tmsdash-jobs-')
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def test_export_csv_writes_the_selected_jobs(admin_client, operator, cluster):
    chosen = make_job(
        user=operator,
        cluster=cluster,
        status=Job.Status.FAILED,
        http_status=500,
        error_message="cluster error",
        customer_count=3,
        legacy_id="L-9",
    )
    make_job(user=operator)

    rows = csv_rows(export(admin_client, JOBS, [chosen]))

    assert rows[0][:4] == ["job id", "created", "updated", "operator"]
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["job id"] == str(chosen.pk)
    assert row["operator"] == "op1"
    assert row["action"] == "Trans-Begin"
    assert row["cluster"] == "eu1"
    assert row["status"] == "FAILED"
    assert row["HTTP status"] == "500"
    assert row["error"] == "cluster error"
    assert row["customers"] == "3"
    assert row["legacy id"] == "L-9"


@pytest.mark.parametrize("danger", ["=HYPERLINK(1)", "+1+1", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_export_csv_neutralises_cells_a_spreadsheet_would_run(admin_client, operator, danger):
    job = make_job(user=operator, status=Job.Status.FAILED, error_message=danger)
    row = dict(zip(*csv_rows(export(admin_client, FAILED, [job])), strict=True))
    assert row["error"] == "'" + danger


def test_export_csv_leaves_harmless_cells_alone():
    assert csv_cell("fine =not at start") == "fine =not at start"
    assert csv_cell(None) == ""
    assert csv_cell(404) == "404"


def test_export_is_the_only_action_and_there_is_no_retry(admin_client, operator):
    make_job(user=operator, status=Job.Status.FAILED)
    for url in (JOBS, FAILED):
        choices = admin_client.get(url).context["action_form"].fields["action"].choices
        assert [name for name, _ in choices if name] == ["export_csv"]


def test_list_says_more_than_when_it_stopped_counting(admin_client, operator, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 3)
    for _ in range(5):
        make_job(user=operator)

    response = admin_client.get(JOBS, {"q": "op1"})

    assert response.context["cl"].result_count == 3
    content = response.content.decode()
    assert "more than 3 jobs" in content
    assert "more than 3 results" in content


def test_list_count_is_exact_below_the_cap(admin_client, operator):
    for _ in range(3):
        make_job(user=operator)
    content = admin_client.get(JOBS).content.decode()
    assert "3 jobs" in content
    assert "more than" not in content


def test_pages_of_a_long_list_follow_each_other(admin_client, operator, monkeypatch):
    monkeypatch.setattr(jobs_admin.JobAdmin, "list_per_page", 2)
    jobs = [make_job(user=operator, created_at=ago(n)) for n in range(5)]

    pages = [listed(admin_client.get(JOBS, {"p": p})) for p in (1, 2, 3)]

    assert [job.pk for page in pages for job in page] == [job.pk for job in jobs]


def test_auditor_can_export_jobs(auditor_client, operator):
    job = make_job(user=operator)
    assert csv_rows(export(auditor_client, JOBS, [job]))[1][0] == str(job.pk)


def test_failed_job_page_opens_from_the_failed_list(admin_client, operator):
    job = make_job(user=operator, status=Job.Status.UNKNOWN)
    url = reverse("admin:jobs_failedjob_change", args=[job.pk])
    assert f'href="{url}"' in admin_client.get(FAILED).content.decode()
    assert admin_client.get(url).context["original"] == FailedJob.objects.get(pk=job.pk)


def test_each_job_links_to_its_operator_ui_page_for_retry(admin_client, operator):
    job = make_job(user=operator, status=Job.Status.FAILED)
    page = reverse("job_detail", args=[job.pk])
    assert f'href="{page}"' in admin_client.get(FAILED).content.decode()
    assert f'href="{page}"' in admin_client.get(change_url(job)).content.decode()
