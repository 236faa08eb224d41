"""The review step of Set Action: nothing is written until the operator confirms, the token
travels sealed between the pages, and Back keeps everything typed but the token."""

from __future__ import annotations

import json
import sys
import time

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.urls import reverse
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from jobs.forms import CLEARED_NOTICE, SEAL_REFUSED
from jobs.models import Job
from jobs.services import job_submit
from jobs.tokens import (
    SEAL_TTL_SECONDS,
    InvalidToken,
    token_encrypt,
    token_seal,
    token_unseal,
)
from jobs.views.set_action import set_action
from tests.helpers import TOKEN, confirm_review, make_user, row_counts


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


def form_data(cluster, **overrides) -> dict:
    return {
        "action": "3",
        "cluster": str(cluster.pk),
        "cids": "C1 C2",
        "token": TOKEN,
        "idempotency_key": "key-review",
        **overrides,
    }


def review(client, cluster, **overrides):
    response = client.post(reverse("set_action"), form_data(cluster, **overrides))
    assert response.status_code == 200
    assert "jobs/set_action_review.html" in [t.name for t in response.templates]
    return response


def carried(response, **overrides) -> dict:
    """The review page's confirm form, as the browser posts it."""
    confirm = response.context["confirm"]
    return {
        **{name: confirm[name].value() for name in confirm.fields},
        "step": "confirm",
        **overrides,
    }


def test_the_form_preselects_no_action_and_requires_one(as_operator, cluster):
    content = as_operator.get(reverse("set_action")).content.decode()
    select = content[content.index('<select name="action"') :]
    select = select[: select.index("</select>")]
    assert " required " in select
    assert '<option value="" selected>Choose an action</option>' in select
    assert select.count("selected") == 1


def test_a_valid_form_shows_the_review_and_writes_nothing(as_operator, cluster):
    before = row_counts()
    cids = " ".join(f"C{n:02}" for n in range(1, 13))
    content = review(as_operator, cluster, cids=cids).content.decode()
    assert row_counts() == before
    facts = content[content.index('<dl class="facts"') : content.index("</dl>")]
    assert "<dt>Action</dt><dd>T-Enable</dd>" in facts
    assert '<dd id="review-cluster">eu1' in facts
    assert "<dt>Customers</dt><dd>12</dd>" in facts
    assert "C01, C02, C03, C04, C05, C06, C07, C08, C09, C10</span> and 2 more" in facts
    assert "C11" not in facts
    assert "<dt>Jobs</dt>\n    <dd>1</dd>" in facts
    assert content.count("data-submit-once") == 2
    assert 'id="confirm-set-action">Confirm and run</button>' in content
    assert 'id="back-set-action" class="secondary">Back</button>' in content
    back_form = content[content.index('id="back-set-action-form"') :]
    assert 'name="seal"' not in back_form


def test_the_review_counts_the_jobs_the_submit_makes(as_operator, cluster):
    cluster.max_cids_per_request = 500
    cluster.save()
    cids = "\n".join(f"C{n}" for n in range(1200))
    response = review(as_operator, cluster, cids=cids)
    assert response.context["preview"].parts == 3
    assert "<dd>3 (a batch: at most 500 customers a job)</dd>" in response.content.decode()
    confirmed = confirm_review(as_operator, response)
    jobs = list(Job.objects.order_by("batch_seq"))
    assert [job.customer_count for job in jobs] == [500, 500, 200]
    assert confirmed["Location"] == reverse("batch_detail", args=[jobs[0].batch_id])


def test_a_csv_file_is_reviewed_with_its_customers(as_operator, cluster):
    upload = SimpleUploadedFile("c.csv", b"cid\nC5\nC6\nC5\n", content_type="text/csv")
    response = review(as_operator, cluster, cids="", csv_file=upload)
    assert response.context["preview"].cids == ["C5", "C6"]
    assert "Back shows the customer IDs of your CSV file as typed" in response.content.decode()
    confirm_review(as_operator, response)
    assert Job.objects.get().customer_count == 2


def test_a_double_confirm_makes_one_job(as_operator, cluster):
    data = carried(review(as_operator, cluster))
    first = as_operator.post(reverse("set_action"), data)
    second = as_operator.post(reverse("set_action"), data)
    job = Job.objects.get()
    assert job.idempotency_key == "key-review"
    assert first["Location"] == second["Location"] == reverse("job_detail", args=[job.pk])


def test_back_keeps_what_was_typed_but_the_token(as_operator, cluster):
    response = review(as_operator, cluster, cids="C1,\nC2  C3")
    before = row_counts()
    back = {**carried(response, step="back")}
    del back["seal"]
    page = as_operator.post(reverse("set_action"), back)
    assert row_counts() == before
    content = page.content.decode()
    form = page.context["form"]
    assert form["action"].value() == "3" and form["cluster"].value() == str(cluster.pk)
    assert ">\nC1,\nC2  C3</textarea>" in content
    assert 'value="key-review"' in content
    assert CLEARED_NOTICE in content
    assert list(form.errors) == ["token"]
    assert TOKEN not in content


def test_back_after_a_csv_file_says_its_ids_came_back_typed(as_operator, cluster):
    upload = SimpleUploadedFile("c.csv", b"cid\nC5\nC6\n", content_type="text/csv")
    back = carried(review(as_operator, cluster, cids="", csv_file=upload), step="back")
    content = as_operator.post(reverse("set_action"), back).content.decode()
    assert ">\nC5\nC6</textarea>" in content
    assert "The customer IDs of your CSV file are back as typed customer IDs." in content


def expired_seal(user_id: int, key: str) -> str:
    payload = json.dumps({"user": user_id, "key": key, "token": TOKEN}).encode()
    late = time.time() - SEAL_TTL_SECONDS - 1
    return Fernet(settings.TMS_TOKEN_KEY).encrypt_at_time(payload, int(late)).decode()


@pytest.mark.parametrize("problem", ["expired", "tampered", "missing", "another key"])
def test_a_seal_that_does_not_open_asks_for_the_token_and_writes_nothing(
    as_operator, operator, cluster, problem
):
    data = carried(review(as_operator, cluster))
    if problem == "expired":
        data["seal"] = expired_seal(operator.pk, data["idempotency_key"])
    elif problem == "tampered":
        data["seal"] = (
            data["seal"][:-8] + ("A" if data["seal"][-8] != "A" else "B") + data["seal"][-7:]
        )
    elif problem == "missing":
        del data["seal"]
    else:
        data["idempotency_key"] = "another-key"
    before = row_counts()
    response = as_operator.post(reverse("set_action"), data)
    assert response.status_code == 200
    assert row_counts() == before
    assert response.context["form"].errors["token"] == [SEAL_REFUSED]
    assert ">\nC1 C2</textarea>" in response.content.decode()


def test_another_operators_seal_is_refused(client, operator, cluster):
    client.force_login(operator)
    data = carried(review(client, cluster))
    client.force_login(make_user("op2", "Operators"))
    response = client.post(reverse("set_action"), data)
    assert response.context["form"].errors["token"] == [SEAL_REFUSED]
    assert Job.objects.count() == 0


def test_busy_customers_are_named_at_the_review_and_nothing_is_written(
    as_operator, operator, cluster
):
    [busy] = job_submit(user=operator, action=1, cluster=cluster, cids="C2", token=TOKEN)
    before = row_counts()
    response = review(as_operator, cluster, cids="C1 C2 C3")
    assert row_counts() == before
    content = response.content.decode()
    assert "<strong>1 customer is busy</strong>" in content
    link = reverse("job_detail", args=[busy.pk])
    assert f'<span class="mono">C2</span>: <a href="{link}" class="mono">job ' in content
    assert 'id="confirm-set-action">Run the 2 free ones</button>' in content
    assert "Confirm and run" not in content
    assert response.context["confirm"]["cids"].value() == "C1\nC3"
    assert response.context["back"]["cids"].value() == "C1 C2 C3"


def test_running_the_free_ones_makes_one_job_without_them_and_asks_no_token(
    as_operator, operator, cluster
):
    job_submit(user=operator, action=1, cluster=cluster, cids="C2", token=TOKEN)
    data = carried(review(as_operator, cluster, cids="C1 C2 C3"))
    assert TOKEN not in str(data)
    first = as_operator.post(reverse("set_action"), data)
    again = as_operator.post(reverse("set_action"), data)
    new = Job.objects.get(idempotency_key="key-review")
    assert first.status_code == again.status_code == 302
    assert first["Location"] == again["Location"] == reverse("job_detail", args=[new.pk])
    assert list(new.customers.values_list("cid", flat=True)) == ["C1", "C3"]
    assert Job.objects.count() == 2


def test_another_operators_busy_job_is_not_named(client, operator, cluster):
    other = make_user("op2", "Operators")
    [hidden] = job_submit(user=other, action=1, cluster=cluster, cids="C1", token=TOKEN)
    client.force_login(operator)
    content = review(client, cluster, cids="C1 C2").content.decode()
    assert '<span class="mono">C1</span>: a job of another operator' in content
    assert str(hidden.pk)[:8] not in content


def test_with_every_customer_busy_only_back_is_offered(as_operator, operator, cluster):
    job_submit(user=operator, action=1, cluster=cluster, cids="C1 C2", token=TOKEN)
    content = review(as_operator, cluster).content.decode()
    assert "No customer is free" in content
    assert 'id="confirm-set-action"' not in content
    assert 'id="back-set-action"' in content


def test_customers_busy_since_the_review_are_named_again_without_asking_the_token(
    as_operator, operator, cluster
):
    data = carried(review(as_operator, cluster, cids="C1 C2"))
    [busy] = job_submit(user=operator, action=1, cluster=cluster, cids="C2", token=TOKEN)
    before = row_counts()
    again = as_operator.post(reverse("set_action"), data)
    assert row_counts() == before
    assert "jobs/set_action_review.html" in [t.name for t in again.templates]
    content = again.content.decode()
    assert reverse("job_detail", args=[busy.pk]) in content
    assert CLEARED_NOTICE not in content
    response = as_operator.post(reverse("set_action"), carried(again))
    new = Job.objects.get(idempotency_key="key-review")
    assert response["Location"] == reverse("job_detail", args=[new.pk])
    assert list(new.customers.values_list("cid", flat=True)) == ["C1"]


def test_a_cluster_retired_after_the_review_is_a_field_error(as_operator, cluster):
    response = review(as_operator, cluster)
    cluster.is_active = False
    cluster.save()
    before = row_counts()
    refused = as_operator.post(reverse("set_action"), carried(response))
    assert "cluster" in refused.context["form"].errors
    assert row_counts() == before


def test_error_reports_hide_the_token_and_the_seal(operator, cluster):
    request = RequestFactory().post("/", {"token": TOKEN, "seal": "sealed", "cids": "C1"})
    request.user = operator
    set_action(request)
    shown = SafeExceptionReporterFilter().get_post_parameters(request)
    assert shown["token"] == shown["seal"] == "********************"
    assert shown["cids"] == "C1"


def test_a_seal_opens_only_for_its_user_and_key(db):
    seal = token_seal(TOKEN, user_id=1, key="k")
    assert token_unseal(seal, user_id=1, key="k") == TOKEN
    assert TOKEN not in seal
    for user_id, key in [(2, "k"), (1, "k2")]:
        with pytest.raises(InvalidToken):
            token_unseal(seal, user_id=user_id, key=key)
    with pytest.raises(InvalidToken):
        token_unseal(expired_seal(1, "k"), user_id=1, key="k")
    # A job's encrypted token is no seal, though the same key made it.
    with pytest.raises(InvalidToken):
        token_unseal(token_encrypt(TOKEN), user_id=1, key="k")


def report_of(call) -> str:
    """The technical error report of what `call` raises, as DEBUG would show it."""
    try:
        call()
    except Exception:
        return ExceptionReporter(None, *sys.exc_info()).get_traceback_html()
    raise AssertionError("nothing was raised")


def test_error_reports_from_sealing_and_unsealing_hide_the_token(settings):
    seal = token_seal(TOKEN, user_id=1, key="k")
    refused = report_of(lambda: token_unseal(seal, user_id=2, key="k"))
    assert "token_unseal" in refused and TOKEN not in refused
    settings.TMS_TOKEN_KEY = "not-a-fernet-key"
    broken = report_of(lambda: token_seal(TOKEN, user_id=1, key="k"))
    assert "token_seal" in broken and TOKEN not in broken
