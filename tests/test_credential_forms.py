"""The Set Action form and the retry forms with a cluster's stored credential: offered only
where a run grant allows it, then asking for no token; the review and its confirmation carry
no token; a refusal says why, with nothing written."""

from __future__ import annotations

import pytest
from django.urls import reverse
from model_bakery import baker

from jobs.models import Job, JobToken, RunGrant
from jobs.services import credential_set, job_run, job_submit
from tests.helpers import TOKEN, confirm_retry, confirm_review, row_counts

STORED = "svc-Stored-credential-4b7e-never-in-clear"


@pytest.fixture
def as_operator(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def stored(cluster):
    credential_set(cluster=cluster, token=STORED)
    return cluster


@pytest.fixture
def allowed(operator, cluster):
    return baker.make(RunGrant, user=operator, cluster=cluster, may_use_stored_credential=True)


def form_data(cluster, **overrides) -> dict:
    return {
        "action": "3",
        "cluster": str(cluster.pk),
        "cids": "C1 C2",
        "token": "",
        "use_stored_credential": "on",
        "idempotency_key": "key-stored",
        **overrides,
    }


def test_the_choice_is_offered_only_where_a_grant_allows_a_credential(
    as_operator, stored, operator
):
    page = as_operator.get(reverse("set_action")).content.decode()
    assert 'name="use_stored_credential"' not in page
    grant = baker.make(RunGrant, user=operator, cluster=stored, may_use_stored_credential=True)
    page = as_operator.get(reverse("set_action")).content.decode()
    assert 'name="use_stored_credential"' in page
    assert STORED not in page
    grant.delete()
    baker.make(RunGrant, user=operator, cluster=None, may_use_stored_credential=True)
    assert 'name="use_stored_credential"' in as_operator.get(reverse("set_action")).content.decode()


def test_a_grant_for_a_cluster_without_a_credential_offers_nothing(as_operator, cluster, allowed):
    assert (
        'name="use_stored_credential"'
        not in as_operator.get(reverse("set_action")).content.decode()
    )


def test_with_the_stored_credential_the_form_needs_no_token_and_the_review_carries_none(
    as_operator, stored, allowed
):
    review = as_operator.post(reverse("set_action"), form_data(stored))
    assert "jobs/set_action_review.html" in [t.name for t in review.templates], review.content
    assert 'id="sent-with">the cluster\'s stored credential<' in review.content.decode()
    assert review.context["confirm"]["seal"].value() == ""
    assert not Job.objects.exists()
    done = confirm_review(as_operator, review)
    assert done.status_code == 302
    [job] = Job.objects.all()
    assert job.uses_stored_credential
    assert not JobToken.objects.exists()


def test_back_keeps_the_choice(as_operator, stored, allowed):
    review = as_operator.post(reverse("set_action"), form_data(stored))
    confirm = review.context["confirm"]
    fields = {name: confirm[name].value() for name in confirm.fields if name != "seal"}
    back = as_operator.post(reverse("set_action"), {**fields, "step": "back"})
    assert back.context["form"]["use_stored_credential"].value() is True


def test_without_the_choice_the_token_is_still_required(as_operator, stored, allowed):
    before = row_counts()
    response = as_operator.post(reverse("set_action"), form_data(stored, use_stored_credential=""))
    assert response.context["form"].errors["token"] == ["This field is required."]
    assert row_counts() == before


def test_a_pair_the_grant_does_not_allow_is_refused_with_nothing_written(
    as_operator, stored, operator
):
    baker.make(RunGrant, user=operator, cluster=stored, action=1, may_use_stored_credential=True)
    before = row_counts()
    response = as_operator.post(reverse("set_action"), form_data(stored, action="3"))
    assert response.status_code == 200
    [error] = response.context["form"].non_field_errors()
    assert "stored credential" in error
    assert row_counts() == before


def test_a_credential_removed_before_the_confirmation_is_refused_on_the_token(
    as_operator, stored, allowed
):
    review = as_operator.post(reverse("set_action"), form_data(stored))
    stored.credential.delete()
    before = row_counts()
    response = confirm_review(as_operator, review)
    assert response.status_code == 200
    # No cluster of the operator's has a credential any more: the form asks for a token.
    assert (
        "Cluster eu1 has no stored credential: give a token."
        in (response.context["form"].errors["token"])
    )
    assert "use_stored_credential" not in response.context["form"].fields
    assert row_counts() == before


def test_a_confirmation_without_seal_or_stored_credential_is_refused(as_operator, stored, allowed):
    review = as_operator.post(reverse("set_action"), form_data(stored))
    confirm = review.context["confirm"]
    fields = {name: confirm[name].value() for name in confirm.fields}
    before = row_counts()
    response = as_operator.post(
        reverse("set_action"), {**fields, "stored_credential": "False", "step": "confirm"}
    )
    assert response.status_code == 200
    assert row_counts() == before


def failed_job(operator, cluster) -> Job:
    [job] = job_submit(user=operator, action=3, cluster=cluster, cids="E500-1", token=TOKEN)
    job_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def test_the_retry_form_asks_for_no_token_where_the_credential_may_be_used(
    as_operator, operator, stored, allowed
):
    job = failed_job(operator, stored)
    page = as_operator.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert 'id="retry-stored-credential"' in page
    assert 'name="retry_token"' not in page
    response = confirm_retry(
        as_operator, reverse("job_retry", args=[job.pk]), {"idempotency_key": "r1"}
    )
    assert response.status_code == 302
    again = Job.objects.get(retry_of=job)
    assert again.uses_stored_credential


def test_the_retry_form_asks_for_a_token_without_the_grant(as_operator, operator, stored):
    job = failed_job(operator, stored)
    page = as_operator.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert 'name="retry_token"' in page
    before = row_counts()
    response = as_operator.post(reverse("job_retry", args=[job.pk]), {"idempotency_key": "r1"})
    assert response.status_code == 400
    assert row_counts() == before


def test_a_batch_retry_uses_the_credential_where_it_may(as_operator, operator, stored, allowed):
    stored.max_cids_per_request = 1
    stored.save()
    jobs = job_submit(user=operator, action=3, cluster=stored, cids="E500-1 E500-2", token=TOKEN)
    for job in jobs:
        job_run(job_id=job.pk)
    url = reverse("batch_detail", args=[jobs[0].batch_id])
    assert 'id="batch-retry-stored-credential"' in as_operator.get(url).content.decode()
    response = confirm_retry(
        as_operator, reverse("batch_retry", args=[jobs[0].batch_id]), {"idempotency_key": "b1"}
    )
    assert response.status_code == 302
    assert Job.objects.filter(retry_of__in=jobs, uses_stored_credential=True).count() == 2
