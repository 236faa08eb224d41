"""Change freezes: a freeze refuses new Set Actions to its clusters (the form and the API, with
its reason and end, nothing written), holds the jobs already queued where a worker claims them
until it ends, and lets an admin's override through, audited. Freezes are made and removed
through the API and the admin, audited; bad input writes nothing.

Real workers holding and releasing jobs are in tests/test_freeze_workers.py."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from model_bakery import baker

from api.tokens import token_create
from audit.models import AuditEntry
from jobs.models import ApprovalRule, ChangeFreeze, Job
from jobs.services import (
    approval_approve,
    job_cancel,
    job_run,
    job_submit,
    job_submit_preview,
)
from jobs.services.freezes import Frozen, freeze_create, freeze_delete
from jobs.services.running import HOLD_RECHECK
from tests.helpers import TOKEN, confirm_review, make_user, row_counts

FREEZES = "/api/v1/change-freezes"
PROBLEM = "application/problem+json"


def written() -> dict[str, int]:
    """The rows of every table but the rate-limit windows, which count refused requests too."""
    return {table: n for table, n in row_counts().items() if table != "api.ApiRateWindow"}


@pytest.fixture
def admin(db):
    """A superuser in Operators: the Operators' run grant lets them run Set Actions."""
    return make_user("boss", "Operators", is_staff=True, is_superuser=True)


def freeze(cluster=None, *, minutes: float = 60, starts: float = -1, reason="Year-end freeze"):
    now = timezone.now()
    return freeze_create(
        freeze=ChangeFreeze(
            cluster=cluster,
            starts_at=now + dt.timedelta(minutes=starts),
            ends_at=now + dt.timedelta(minutes=minutes),
            reason=reason,
        )
    )


def submit(user, cluster, cids="C1", **extra) -> list[Job]:
    return job_submit(user=user, action=1, cluster=cluster, cids=cids, token=TOKEN, **extra)


def call(client, method: str, url: str, secret: str, body=None, **headers):
    send = getattr(client, method)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}", **headers}
    if body is None:
        return send(url, **auth)
    return send(url, json.dumps(body), content_type="application/json", **auth)


# Refusing submits


def test_a_freeze_of_the_cluster_refuses_a_submit_naming_it_and_its_end(operator, cluster):
    frozen = freeze(cluster)
    before = written()
    with pytest.raises(Frozen) as refused:
        submit(operator, cluster)
    assert refused.value.freeze == frozen
    message = " ".join(refused.value.messages)
    assert "change freeze" in message and "Year-end freeze" in message
    assert f"{frozen.ends_at:%Y-%m-%d %H:%M} UTC" in message
    with pytest.raises(Frozen):
        job_submit_preview(user=operator, action=1, cluster=cluster, cids="C1", token=TOKEN)
    assert written() == before


def test_a_freeze_of_every_cluster_refuses_and_one_of_another_or_past_does_not(operator, cluster):
    other = baker.make("jobs.Cluster", name="us1", base_url="http://127.0.0.1:9", is_active=True)
    freeze(other)
    freeze(None, starts=-60, minutes=-1, reason="Over")
    freeze(None, starts=10, minutes=60, reason="Not yet")
    assert len(submit(operator, cluster)) == 1
    freeze(None, reason="Everything")
    with pytest.raises(Frozen, match="Everything"):
        submit(operator, cluster, cids="C2")


def test_the_same_submit_again_during_a_freeze_replays_the_jobs_made_before_it(operator, cluster):
    [job] = submit(operator, cluster, idempotency_key="k1")
    freeze(cluster)
    before = written()
    again = submit(operator, cluster, idempotency_key="k1")
    assert (again.replayed, [j.pk for j in again]) == (True, [job.pk])
    # The key reused for other content is refused as at any time.
    with pytest.raises(ValidationError, match="idempotency key was used"):
        submit(operator, cluster, cids="C2", idempotency_key="k1")
    with pytest.raises(Frozen):
        submit(operator, cluster, idempotency_key="k2")
    assert written() == before


def test_a_freezes_end_is_named_in_utc_whatever_zone_it_was_given_in(cluster):
    berlin = dt.timezone(dt.timedelta(hours=1))
    given = ChangeFreeze(
        cluster=cluster,
        starts_at=dt.datetime(2027, 12, 20, tzinfo=berlin),
        ends_at=dt.datetime(2028, 1, 3, tzinfo=berlin),
        reason="Year-end freeze",
    )
    assert str(given) == "Freeze of eu1 until 2028-01-02 23:00 UTC: Year-end freeze"
    assert "until 2028-01-02 23:00 UTC" in Frozen(given, cluster).messages[0]


def test_the_api_answers_409_naming_the_freeze_and_writes_nothing(client, operator, cluster):
    frozen = freeze(cluster)
    secret = token_create(user=operator, name="ci").secret
    before = written()
    response = call(
        client,
        "post",
        "/api/v1/set-actions",
        secret,
        {"action": "T-Enable", "cluster": "eu1", "cids": ["C1"], "cluster_token": TOKEN},
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    assert response.status_code == 409
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert "Year-end freeze" in body["detail"]
    assert body["freeze"] == {
        "id": frozen.pk,
        "cluster": "eu1",
        "ends_at": frozen.ends_at.isoformat(),
        "reason": "Year-end freeze",
    }
    assert written() == before


def test_the_form_shows_the_freeze_at_review_and_at_confirm_and_writes_nothing(
    client, operator, cluster
):
    client.force_login(operator)
    data = {
        "action": "3",
        "cluster": str(cluster.pk),
        "cids": "C1",
        "token": TOKEN,
        "idempotency_key": "key-freeze",
    }
    # Reviewed before the freeze, confirmed during it.
    review = client.post(reverse("set_action"), data)
    frozen = freeze(cluster)
    before = written()
    response = confirm_review(client, review)
    assert response.status_code == 200
    content = response.content.decode()
    assert "Year-end freeze" in content and f"{frozen.ends_at:%Y-%m-%d %H:%M} UTC" in content
    assert written() == before
    # A new review is refused alike, and the form offers no override to an operator.
    response = client.post(reverse("set_action"), {**data, "idempotency_key": "key-2"})
    content = response.content.decode()
    assert "jobs/set_action.html" in [t.name for t in response.templates]
    assert "Year-end freeze" in content
    assert "freeze_override_reason" not in content
    assert written() == before


def test_the_set_action_command_is_refused_with_exit_3_and_writes_nothing(
    operator, cluster, monkeypatch
):
    monkeypatch.setenv("TMS_TOKEN", TOKEN)
    freeze(cluster)
    before = written()
    with pytest.raises(CommandError, match="Year-end freeze") as refused:
        call_command(
            "set_action",
            *("--user", "op1", "--cluster", "eu1", "--action", "1", "--cids", "C1"),
            stdout=io.StringIO(),
        )
    assert refused.value.returncode == 3
    assert written() == before


# Overriding


def test_an_admin_overrides_a_freeze_with_a_reason_audited_and_the_job_is_sent(admin, cluster):
    frozen = freeze(cluster)
    with pytest.raises(Frozen):
        submit(admin, cluster, freeze_override_reason="   ")
    [job] = submit(admin, cluster, freeze_override_reason="Outage fix INC-42")
    job.refresh_from_db()
    assert (job.freeze_override_reason, job.freeze_overridden_by) == ("Outage fix INC-42", admin)
    [entry] = AuditEntry.objects.filter(event="freeze.overridden")
    assert (entry.job_id, entry.actor, entry.details["freeze_id"]) == (job.pk, admin, frozen.pk)
    assert entry.details["override_reason"] == "Outage fix INC-42"
    # Sent during the freeze: the claim lets an overridden job through.
    assert job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "SUCCESS"


def test_an_override_without_a_freeze_is_not_recorded(admin, cluster):
    [job] = submit(admin, cluster, freeze_override_reason="Just in case")
    job.refresh_from_db()
    assert (job.freeze_override_reason, job.freeze_overridden_by) == ("", None)
    assert not AuditEntry.objects.filter(event="freeze.overridden").exists()


def test_an_override_reason_from_an_operator_is_refused_freeze_or_not(operator, cluster):
    before = written()
    with pytest.raises(PermissionDenied, match="Only an administrator"):
        submit(operator, cluster, freeze_override_reason="Because")
    assert written() == before


def test_the_form_offers_an_admin_the_override_and_the_review_states_it(client, admin, cluster):
    freeze(cluster)
    client.force_login(admin)
    assert "freeze_override_reason" in client.get(reverse("set_action")).content.decode()
    review = client.post(
        reverse("set_action"),
        {
            "action": "3",
            "cluster": str(cluster.pk),
            "cids": "C1",
            "token": TOKEN,
            "idempotency_key": "key-override",
            "freeze_override_reason": "Outage fix INC-42",
        },
    )
    shown = review.content.decode()
    assert 'id="freeze-override"' in shown
    assert "Year-end freeze" in shown and "because: Outage fix INC-42" in shown
    response = confirm_review(client, review)
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.freeze_override_reason == "Outage fix INC-42"
    assert AuditEntry.objects.filter(event="freeze.overridden", job_id=job.pk).count() == 1


def test_the_api_takes_an_admins_override(client, admin, cluster):
    freeze(cluster)
    secret = token_create(user=admin, name="ci").secret
    body = {"action": "T-Enable", "cluster": "eu1", "cids": ["C1"], "cluster_token": TOKEN}
    response = call(
        client,
        "post",
        "/api/v1/set-actions",
        secret,
        {**body, "freeze_override_reason": "Outage fix INC-42"},
        HTTP_IDEMPOTENCY_KEY="k1",
    )
    assert response.status_code == 201, response.content
    assert Job.objects.get().freeze_override_reason == "Outage fix INC-42"


# Holding queued jobs where a worker claims them


def test_a_job_queued_before_a_freeze_is_held_until_its_end_then_sent(operator, cluster):
    [job] = submit(operator, cluster)
    frozen = freeze(cluster, minutes=30)
    before = timezone.now()
    assert not job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.started_at) == ("IN_PROGRESS", None)
    assert (job.waiting_for, job.waiting_until) == ("freeze", frozen.ends_at)
    assert job.waiting_task_id is None and job.waiting_since >= before
    # Looked at again within HOLD_RECHECK, so that removing the freeze is noticed.
    [task] = DBTaskResult.objects.filter(status="READY", run_after__year__lt=9999)
    assert before + HOLD_RECHECK <= task.run_after <= timezone.now() + HOLD_RECHECK
    # Held again at the next look: audited once.
    assert not job_run(job_id=job.pk)
    assert AuditEntry.objects.filter(event="job.held", job_id=job.pk).count() == 1

    assert freeze_delete(freeze=frozen)
    assert job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.waiting_for, job.waiting_until) == ("SUCCESS", "", None)
    assert AuditEntry.objects.filter(event="job.released", job_id=job.pk).count() == 1


def test_the_api_says_what_a_held_job_waits_for_and_until_when(client, operator, cluster):
    [job] = submit(operator, cluster)
    frozen = freeze(cluster, minutes=30)
    job_run(job_id=job.pk)
    secret = token_create(user=operator, name="script").secret
    body = json.loads(
        client.get(f"/api/v1/jobs/{job.pk}", HTTP_AUTHORIZATION=f"Bearer {secret}").content
    )
    until = dt.datetime.fromisoformat(body["waiting_until"])
    assert (body["shown_status"], body["waiting_for"], until) == (
        "QUEUED",
        "freeze",
        frozen.ends_at,
    )


def test_a_job_approved_during_a_freeze_is_held_like_any_queued_job(operator, cluster):
    ApprovalRule.objects.create(approvers_group=Group.objects.get(name="Approvers"))
    [job] = submit(operator, cluster)
    assert job.status == "PENDING_APPROVAL"
    freeze(cluster)
    approval_approve(request_id=job.approval_id, user=make_user("ap1", "Approvers"))
    assert not job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.started_at, job.waiting_for) == ("IN_PROGRESS", None, "freeze")


def test_a_hold_looks_again_when_the_freeze_ends_if_that_is_sooner(operator, cluster):
    [job] = submit(operator, cluster)
    frozen = freeze(cluster, minutes=0.25)
    assert not job_run(job_id=job.pk)
    assert DBTaskResult.objects.filter(status="READY", run_after=frozen.ends_at).count() == 1


def test_a_held_job_can_be_cancelled_and_its_task_then_does_nothing(operator, cluster):
    [job] = submit(operator, cluster)
    freeze(cluster)
    assert not job_run(job_id=job.pk)
    report = job_cancel(job_ids=[job.pk], user=operator)
    assert report.cancelled == [job.pk]
    freeze_delete(freeze=ChangeFreeze.objects.get())
    assert not job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == "CANCELLED"


def test_the_job_page_and_list_say_a_held_job_waits_for_the_freeze(client, operator, cluster):
    [job] = submit(operator, cluster)
    frozen = freeze(cluster)
    job_run(job_id=job.pk)
    client.force_login(operator)
    end = frozen.ends_at.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    held = f'held by the change freeze until <time datetime="{end}">'
    assert held in client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert held in client.get(reverse("job_list")).content.decode()
    # Not counted among the jobs ahead of others in the queue.
    assert (
        'id="queue-position"'
        not in client.get(reverse("job_detail", args=[job.pk])).content.decode()
    )


# Making and removing freezes


def test_the_database_refuses_a_freeze_ending_before_it_starts(db):
    now = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        ChangeFreeze.objects.create(starts_at=now, ends_at=now, reason="x")


@pytest.fixture
def admin_secret(admin) -> str:
    return token_create(user=admin, name="freezes").secret


def test_an_admin_token_lists_creates_and_deletes_freezes_each_audited(
    client, admin, admin_secret, cluster
):
    body = {
        "cluster": "eu1",
        "starts_at": "2027-12-20T00:00:00+01:00",
        "ends_at": "2028-01-03T00:00:00Z",
        "reason": "Year-end freeze",
    }
    response = call(client, "post", FREEZES, admin_secret, body)
    assert response.status_code == 201, response.content
    made = response.json()
    assert made["cluster"] == "eu1" and made["created_by"] == "boss"
    assert made["starts_at"] == "2027-12-19T23:00:00Z"
    everywhere = call(client, "post", FREEZES, admin_secret, {**body, "cluster": None}).json()
    assert everywhere["cluster"] is None
    listed = call(client, "get", FREEZES, admin_secret).json()["results"]
    assert [row["id"] for row in listed] == [everywhere["id"], made["id"]]
    [entry, _] = AuditEntry.objects.filter(event="freeze.created").order_by("id")
    assert (entry.actor, entry.details["reason"], entry.details["cluster"]) == (
        admin,
        "Year-end freeze",
        "eu1",
    )

    assert call(client, "delete", f"{FREEZES}/{made['id']}", admin_secret).status_code == 204
    assert call(client, "delete", f"{FREEZES}/{made['id']}", admin_secret).status_code == 404
    assert call(client, "delete", f"{FREEZES}/x1", admin_secret).status_code == 404
    assert list(ChangeFreeze.objects.values_list("pk", flat=True)) == [everywhere["id"]]
    [removed] = AuditEntry.objects.filter(event="freeze.deleted")
    assert removed.details["freeze_id"] == made["id"]


GOOD = {
    "cluster": "eu1",
    "starts_at": "2027-12-20T00:00:00Z",
    "ends_at": "2028-01-03T00:00:00Z",
    "reason": "Year-end freeze",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ends_at": "2027-12-19T00:00:00Z"}, "ends_at"),
        ({"ends_at": "2027-12-20T00:00:00Z"}, "ends_at"),
        ({"reason": ""}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": None}, "reason"),
        ({"reason": "x" * 501}, "reason"),
        ({"cluster": "nowhere"}, "cluster"),
        ({"cluster": 5}, "cluster"),
        ({"starts_at": "tomorrow"}, "starts_at"),
        ({"starts_at": 1700000000}, "starts_at"),
        ({"ends_at": "2027-13-40T00:00:00Z"}, "ends_at"),
        ({"cluster": "__missing__"}, "cluster"),
    ],
)
def test_bad_freezes_are_400_problems_and_write_nothing(
    client, admin_secret, cluster, change, field
):
    body = {**GOOD, **change}
    body = {key: value for key, value in body.items() if value != "__missing__"}
    before = written()
    response = call(client, "post", FREEZES, admin_secret, body)
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == PROBLEM
    assert field in response.json()["errors"]
    assert written() == before


def test_an_operators_token_may_not_see_or_make_freezes(client, operator, cluster):
    secret = token_create(user=operator, name="ci").secret
    before = written()
    assert call(client, "get", FREEZES, secret).status_code == 403
    assert call(client, "post", FREEZES, secret, GOOD).status_code == 403
    assert written() == before


def test_freezes_are_added_and_removed_in_the_admin_audited(client, admin, cluster):
    client.force_login(admin)
    response = client.post(
        reverse("admin:jobs_changefreeze_add"),
        {
            "cluster": str(cluster.pk),
            "starts_at_0": "2027-12-20",
            "starts_at_1": "00:00:00",
            "ends_at_0": "2028-01-03",
            "ends_at_1": "00:00:00",
            "reason": "Year-end freeze",
        },
    )
    assert response.status_code == 302, response.content
    made = ChangeFreeze.objects.get()
    assert made.created_by == admin
    assert AuditEntry.objects.filter(event="freeze.created", actor=admin).count() == 1
    before = written()
    response = client.post(
        reverse("admin:jobs_changefreeze_add"),
        {
            "cluster": "",
            "starts_at_0": "2027-12-20",
            "starts_at_1": "00:00:00",
            "ends_at_0": "2027-12-19",
            "ends_at_1": "00:00:00",
            "reason": "Backwards",
        },
    )
    assert response.status_code == 200
    assert "The freeze must end after it starts." in response.content.decode()
    assert written() == before
    response = client.post(
        reverse("admin:jobs_changefreeze_delete", args=[made.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not ChangeFreeze.objects.exists()
    assert AuditEntry.objects.filter(event="freeze.deleted", actor=admin).count() == 1
