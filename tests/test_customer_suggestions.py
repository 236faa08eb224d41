"""The jobs list's search and the customer history suggest the customer IDs that differ from
the one asked for only in case, among those the user can see."""

from __future__ import annotations

from itertools import product

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from model_bakery import baker

from jobs.models import Job, JobCustomer
from jobs.views.common import customer_history_url
from jobs.views.lists import SUGGESTIONS_MAX, customer_suggestions
from tests.helpers import make_user

pytestmark = pytest.mark.django_db


def job_with(user, *cids: str) -> Job:
    job = baker.make(Job, user=user, action=3, status=Job.Status.SUCCESS)
    for cid in cids:
        JobCustomer.objects.create(job=job, cid=cid)
    return job


def suggestions(response) -> list[str]:
    return response.context["suggestions"]


def test_a_search_in_another_case_suggests_the_customer(client, operator):
    job_with(operator, "C1002")
    client.force_login(operator)

    response = client.get(reverse("job_list"), {"q": "c1002"})

    assert response.status_code == 200
    assert suggestions(response) == ["C1002"]
    content = response.content.decode()
    assert "No job id starts with “c1002”" in content
    assert f'href="{customer_history_url("C1002")}"' in content


def test_an_exact_customer_id_still_opens_its_history(client, operator):
    job_with(operator, "C1002", "c1002")
    client.force_login(operator)

    response = client.get(reverse("job_list"), {"q": "c1002"})

    assert response.status_code == 302
    assert response.url == customer_history_url("c1002")


def test_suggestions_are_distinct_and_at_most_ten(client, operator):
    spellings = {"".join(letters) for letters in product("aA", "bB", "-", "cC", "dD")}
    spellings.remove("ab-cd")
    for spelling in spellings:
        # Each spelling in two jobs: still suggested once.
        job_with(operator, spelling)
        job_with(operator, spelling)
    client.force_login(operator)

    response = client.get(reverse("job_list"), {"q": "ab-cd"})

    assert len(spellings) > SUGGESTIONS_MAX
    shown = suggestions(response)
    assert len(shown) == len(set(shown)) == SUGGESTIONS_MAX
    assert set(shown) <= spellings


def test_another_operators_customers_are_never_suggested(client, operator):
    other = make_user("op2", "Operators")
    job_with(other, "C1002")
    job_with(operator, "C1003")
    client.force_login(operator)

    response = client.get(reverse("job_list"), {"q": "c1002"})
    assert suggestions(response) == []
    assert "C1002" not in response.content.decode()

    response = client.get(reverse("customer_history"), {"cid": "c1002"})
    assert suggestions(response) == []
    assert "C1002" not in response.content.decode()


def test_an_auditor_is_offered_every_operators_customers(client, operator):
    job_with(operator, "C1002")
    auditor = make_user("aud", "Auditors", is_staff=True)
    client.force_login(auditor)

    response = client.get(reverse("job_list"), {"q": "c1002"})

    assert suggestions(response) == ["C1002"]


def test_customer_history_without_rows_suggests_other_cases(client, operator):
    job_with(operator, "Cust-7", "CUST-7")
    client.force_login(operator)

    response = client.get(reverse("customer_history"), {"cid": "cust-7"})

    assert response.status_code == 200
    assert suggestions(response) == ["CUST-7", "Cust-7"]
    content = response.content.decode()
    assert 'id="customer-suggestions"' in content
    assert f'href="{customer_history_url("Cust-7")}"' in content


def test_customer_history_with_rows_suggests_nothing(client, operator):
    job_with(operator, "cust-7", "CUST-7")
    client.force_login(operator)

    response = client.get(reverse("customer_history"), {"cid": "cust-7"})

    assert suggestions(response) == []
    assert 'id="customer-suggestions"' not in response.content.decode()


def test_a_job_id_prefix_that_matches_suggests_nothing(client, operator):
    job = job_with(operator, "C1")
    client.force_login(operator)

    response = client.get(reverse("job_list"), {"q": str(job.pk)[:8]})

    assert [row.pk for row in response.context["page"]] == [job.pk]
    assert suggestions(response) == []


def test_a_search_too_long_is_a_field_error(client, operator):
    job_with(operator, "C1")
    client.force_login(operator)

    response = client.get(reverse("job_list"), {"q": "c" * 101})

    assert response.context["form"].errors["q"]
    assert suggestions(response) == []


def test_the_suggestions_query_reads_the_upper_cid_index(rf, operator):
    job_with(operator, "C1002")
    request = rf.get("/")
    request.user = operator
    with CaptureQueriesContext(connection) as queries:
        assert customer_suggestions(request, "c1002") == ["C1002"]
    [query] = [q["sql"] for q in queries.captured_queries if "jobs_jobcustomer" in q["sql"]]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A test table is tiny; on it PostgreSQL would rather read it all than any index.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {query}")
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {query}")
        plan = str(cursor.fetchall())
    assert "jobcustomer_cid_upper_idx" in plan
