"""The Set Action service: validation, submit, idempotency, the conflict guard, retry, reap."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django_tasks_db.models import DBTaskResult
from model_bakery import baker

from audit.models import AuditEntry
from jobs.models import Cluster, InFlightCustomer, Job, JobCustomer, JobToken
from jobs.services import (
    INTERRUPTED,
    NOT_STARTED,
    CustomerConflict,
    job_cancel,
    job_reap_stale,
    job_retry,
    job_run,
    job_submit,
    parse_action,
    parse_cids,
)
from jobs.tokens import token_decrypt
from tests.helpers import TOKEN, make_user, row_counts


def submit(user, on_cluster, cids="C1 C2", **overrides):
    """Submit with sensible defaults; `overrides` may replace any argument, cluster included."""
    arguments = {"action": "Trans-Begin", "token": TOKEN, "cluster": on_cluster, "cids": cids}
    return job_submit(user=user, **{**arguments, **overrides})


# Parsing


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (1, 1),
        ("5", 5),
        ("trans-begin", 1),
        ("TRAN-BEGIN", 1),
        ("pe-enable", 2),
        (" T-Enable ", 3),
        ("PE-FINALIZE", 4),
        ("pe_finalize", 4),
        ("PE Direct", 5),
        ("pe-direct", 5),
    ],
)
def test_action_accepts_codes_and_names_in_any_case(value, code):
    assert parse_action(value) == code


@pytest.mark.parametrize("value", [0, 6, "7", "enable", ""])
def test_unknown_action_is_refused(value):
    with pytest.raises(ValidationError, match="Unknown action"):
        parse_action(value)


def test_cids_split_on_commas_spaces_and_new_lines_dropping_blanks_and_repeats(settings):
    assert parse_cids(" C2, C1\n\nC2 \tC3,,C1 ") == ["C2", "C1", "C3"]


def test_invalid_cids_are_named_with_positions_up_to_ten():
    bad = " ".join(f"bad!{n}" for n in range(12))
    with pytest.raises(ValidationError) as excinfo:
        parse_cids("OK1 " + bad)
    message = excinfo.value.message_dict["cids"][0]
    assert message.startswith("12 invalid customer ID(s): 'bad!0' (item 2)")
    assert "'bad!9' (item 11) and 2 more" in message
    assert "bad!10" not in message


def test_cid_positions_name_csv_lines():
    with pytest.raises(ValidationError, match=r"'x y' \(line 3\)"):
        parse_cids(["C1", "x y"], ["line 2", "line 3"])


def test_positions_that_do_not_stand_for_every_cid_are_a_programming_error():
    with pytest.raises(ValueError, match="one position is needed for each customer ID"):
        parse_cids(["C1", "C2"], ["line 2"])


def test_cid_pattern_and_maximum_come_from_settings(settings):
    settings.TMS_CID_PATTERN = r"^\d+$"
    settings.TMS_MAX_CIDS = 2
    with pytest.raises(ValidationError, match="'A1' \\(item 1\\)"):
        parse_cids("A1")
    with pytest.raises(ValidationError, match=r"3 customer IDs; the most .* is 2"):
        parse_cids("1 2 3")


@pytest.mark.parametrize("cids", ["", " , \n", []])
def test_no_cids_is_refused(cids):
    with pytest.raises(ValidationError, match="at least one customer ID"):
        parse_cids(cids)


# Submit


def test_submit_records_one_job_with_customers_token_guard_audit_and_task(operator, cluster):
    [job] = submit(operator, cluster, "C1 C2", idempotency_key="k1", ip_address="10.1.2.3")
    job.refresh_from_db()
    assert job.status == Job.Status.IN_PROGRESS and job.started_at is None
    assert (job.action, job.cluster, job.cluster_url) == (1, cluster, cluster.base_url)
    assert job.customer_count == 2 and job.batch_id is None
    assert list(job.customers.order_by("pk").values_list("cid", flat=True)) == ["C1", "C2"]
    assert job.request_payload == {
        "job_id": str(job.pk),
        "action": 1,
        "action_name": "Trans-Begin",
        "cids": ["C1", "C2"],
    }
    assert token_decrypt(JobToken.objects.get(job=job).ciphertext) == TOKEN
    assert len(job.token_fingerprint) == 16 and TOKEN not in job.token_fingerprint
    assert set(InFlightCustomer.objects.values_list("cid", "job_id")) == {
        ("C1", job.pk),
        ("C2", job.pk),
    }
    entry = AuditEntry.objects.get(event="set_action.requested")
    assert (entry.job_id, entry.actor, entry.ip_address) == (job.pk, operator, "10.1.2.3")
    task = DBTaskResult.objects.get()
    assert task.args_kwargs == {"args": [str(job.pk)], "kwargs": {}}


@pytest.mark.parametrize("count", [1, 12, 1200])
def test_customers_are_recorded_in_the_order_typed(operator, cluster, count):
    cluster.max_cids_per_request = 5000
    cluster.save()
    # Neither sorted nor reverse-sorted, as text or as numbers.
    cids = [f"{(n * 7919) % 10007}" for n in range(count)]
    [job] = submit(operator, cluster, cids)
    assert list(job.customers.order_by("pk").values_list("cid", flat=True)) == cids
    assert (
        list(InFlightCustomer.objects.filter(job=job).order_by("pk").values_list("cid", flat=True))
        == cids
    )
    assert job.request_payload["cids"] == cids


def test_customer_ids_any_pattern_allows_are_recorded_as_typed(operator, cluster, settings):
    settings.TMS_CID_PATTERN = r"[^,\s]{1,64}"
    cids = ['quo"te', "back\\slash", "ünïcödé-客户", "semi;colon'--", "[1]", "{}"]
    [job] = submit(operator, cluster, cids)
    assert list(job.customers.order_by("pk").values_list("cid", flat=True)) == cids
    assert set(InFlightCustomer.objects.values_list("cid", flat=True)) == set(cids)


def test_tasks_are_enqueued_in_the_submits_transaction_and_roll_back_with_it(operator, cluster):
    cluster.max_cids_per_request = 1
    cluster.save()
    with pytest.raises(RuntimeError), transaction.atomic():
        jobs = submit(operator, cluster, "C1 C2")
        assert DBTaskResult.objects.count() == len(jobs) == 2
        raise RuntimeError("the caller's transaction fails after the submit")
    assert DBTaskResult.objects.count() == 0
    assert Job.objects.count() == 0


def test_cids_over_the_clusters_chunk_size_make_a_batch(operator, cluster):
    cluster.max_cids_per_request = 2
    cluster.save()
    jobs = submit(operator, cluster, "A B C D E", idempotency_key="batch")
    assert [job.batch_seq for job in jobs] == [1, 2, 3]
    assert len({job.batch_id for job in jobs}) == 1 and jobs[0].batch_id is not None
    assert [job.customer_count for job in jobs] == [2, 2, 1]
    assert [list(j.customers.values_list("cid", flat=True).order_by("pk")) for j in jobs] == [
        ["A", "B"],
        ["C", "D"],
        ["E"],
    ]
    assert AuditEntry.objects.filter(event="set_action.requested").count() == 3
    # The same key again returns the whole batch in order.
    assert submit(operator, cluster, "A B C D E", idempotency_key="batch") == jobs


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("action", {"action": "Trans-End"}),
        ("cluster", {"cluster": "nowhere"}),
        ("cids", {"cids": "C1 bad/cid"}),
        ("token", {"token": ""}),
        ("token", {"token": "x" * 4097}),
        ("token", {"token": "abc\ndef"}),
        ("token", {"token": "abc def"}),
        ("token", {"token": "tökén"}),
        ("idempotency_key", {"idempotency_key": "k" * 101}),
    ],
)
def test_invalid_input_is_refused_and_writes_nothing(operator, cluster, field, kwargs):
    before = row_counts()
    with pytest.raises(ValidationError) as excinfo:
        submit(operator, cluster, **kwargs)
    assert field in excinfo.value.message_dict
    assert row_counts() == before


def test_every_problem_is_reported_at_once(operator, cluster):
    with pytest.raises(ValidationError) as excinfo:
        submit(operator, "nowhere", action="x", cids="", token="")
    assert set(excinfo.value.message_dict) == {"action", "cluster", "cids", "token"}


def test_token_never_appears_in_a_validation_message(operator, cluster):
    with pytest.raises(ValidationError) as excinfo:
        submit(operator, cluster, token=TOKEN + "\x00")
    assert TOKEN not in str(excinfo.value)


def test_inactive_cluster_is_refused(operator, cluster):
    cluster.is_active = False
    cluster.save()
    with pytest.raises(ValidationError, match="No active cluster"):
        submit(operator, cluster)
    assert Job.objects.count() == 0


def test_user_without_run_permission_is_refused(db, cluster):
    auditor = baker.make("auth.User")
    with pytest.raises(PermissionDenied):
        submit(auditor, cluster)
    assert Job.objects.count() == 0


# Idempotency


def test_same_key_again_returns_the_first_job_and_writes_nothing(operator, cluster):
    [first] = submit(operator, cluster, idempotency_key="click-1")
    before = row_counts()
    assert submit(operator, cluster, idempotency_key="click-1") == [first]
    assert row_counts() == before


@pytest.mark.parametrize(
    "change", [{"action": "PE-Enable"}, {"cids": "C1 C3"}, {"cids": "C2 C1"}, {"cluster": "other"}]
)
def test_same_key_with_other_content_is_refused(operator, cluster, change):
    baker.make(Cluster, name="other", base_url="http://127.0.0.1:9")
    submit(operator, cluster, idempotency_key="click-1")
    before = row_counts()
    with pytest.raises(ValidationError, match="used for another submission"):
        submit(operator, cluster, idempotency_key="click-1", **change)
    assert row_counts() == before


def test_same_key_from_another_user_is_independent(operator, cluster):
    other = baker.make("auth.User", username="op2")
    other.groups.add(*operator.groups.all())
    [first] = submit(operator, cluster, "C1", idempotency_key="k")
    [second] = submit(other, cluster, "C9", idempotency_key="k")
    assert first != second


# The conflict guard


def test_customer_with_a_job_in_progress_on_the_cluster_is_refused_naming_the_job(
    operator, cluster
):
    [first] = submit(operator, cluster, "C1 C2")
    before = row_counts()
    with pytest.raises(CustomerConflict) as excinfo:
        submit(operator, cluster, "C3 C2")
    assert excinfo.value.job_ids == [first.pk]
    assert str(first.pk) in excinfo.value.message_dict["cids"][0]
    assert row_counts() == before


def test_a_conflict_with_another_operators_job_does_not_name_it(operator, cluster):
    other = make_user("op-other", "Operators")
    [theirs] = submit(other, cluster, "C1")
    before = row_counts()
    with pytest.raises(CustomerConflict) as excinfo:
        submit(operator, cluster, "C1 C2")
    message = excinfo.value.message_dict["cids"][0]
    assert "a job of another operator" in message
    assert str(theirs.pk) not in message
    assert excinfo.value.job_ids == []
    assert row_counts() == before


def test_a_conflict_names_another_operators_job_to_an_auditor_who_may_see_it(operator, cluster):
    other = make_user("op-other", "Operators")
    [theirs] = submit(other, cluster, "C1")
    operator.user_permissions.add(Permission.objects.get(codename="view_all_jobs"))
    operator = type(operator).objects.get(pk=operator.pk)  # permissions are cached per object
    with pytest.raises(CustomerConflict) as excinfo:
        submit(operator, cluster, "C1")
    assert str(theirs.pk) in excinfo.value.message_dict["cids"][0]
    assert excinfo.value.job_ids == [theirs.pk]


def test_same_customer_on_another_cluster_is_allowed(operator, cluster):
    other = baker.make(Cluster, name="other", base_url="http://127.0.0.1:9")
    submit(operator, cluster, "C1")
    assert len(submit(operator, other, "C1")) == 1


def test_customer_is_free_again_when_its_job_ends(operator, cluster):
    [first] = submit(operator, cluster, "C1")
    Job.objects.filter(pk=first.pk).update(created_at=first.created_at - dt.timedelta(hours=1))
    job_reap_stale()
    assert InFlightCustomer.objects.count() == 0
    assert len(submit(operator, cluster, "C1")) == 1


# Reaping


def test_job_never_started_past_queue_expiry_fails_and_its_task_then_does_nothing(
    operator, cluster, settings
):
    settings.TMS_QUEUE_EXPIRY = 600
    [job] = submit(operator, cluster)
    created = job.created_at
    assert job_reap_stale(now=created + dt.timedelta(seconds=599)).expired == []
    report = job_reap_stale(now=created + dt.timedelta(seconds=601))
    assert report.expired == [job.pk] and report.unknown == []
    job.refresh_from_db()
    assert (job.status, job.error_message, job.http_status) == ("FAILED", NOT_STARTED, None)
    assert job.finished_at is not None
    assert not JobToken.objects.filter(job=job).exists()
    assert AuditEntry.objects.filter(job_id=job.pk, event="job.failed").count() == 1
    # A worker picking the task up now neither calls the cluster nor changes the job.
    assert job_run(job_id=job.pk) is False
    job.refresh_from_db()
    assert job.status == "FAILED" and job.started_at is None


def test_started_job_past_timeout_and_grace_becomes_unknown(operator, cluster, settings):
    settings.TMS_REAP_GRACE = 60
    [job] = submit(operator, cluster)
    started = job.created_at + dt.timedelta(seconds=1)
    Job.objects.filter(pk=job.pk).update(started_at=started)
    limit = started + dt.timedelta(seconds=cluster.timeout_seconds + 60)
    assert job_reap_stale(now=limit - dt.timedelta(seconds=1)).unknown == []
    assert job_reap_stale(now=limit + dt.timedelta(seconds=1)).unknown == [job.pk]
    job.refresh_from_db()
    assert (job.status, job.error_message) == ("UNKNOWN", INTERRUPTED)
    assert not InFlightCustomer.objects.filter(job=job).exists()
    assert AuditEntry.objects.filter(job_id=job.pk, event="job.unknown").count() == 1
    # Reaping again changes nothing.
    assert job_reap_stale(now=limit + dt.timedelta(hours=1)).unknown == []
    assert AuditEntry.objects.filter(job_id=job.pk, event="job.unknown").count() == 1


def test_reaper_leaves_recent_and_ended_jobs_alone(operator, cluster):
    [running] = submit(operator, cluster, "C1")
    ended = baker.make(
        Job,
        user=operator,
        action=1,
        cluster=cluster,
        status="SUCCESS",
        created_at=running.created_at - dt.timedelta(days=1),
    )
    report = job_reap_stale()
    assert report.unknown == [] and report.expired == []
    assert Job.objects.get(pk=ended.pk).status == "SUCCESS"
    assert Job.objects.get(pk=running.pk).status == "IN_PROGRESS"


# Retry


def _failed_job(operator, cluster, outcomes: dict[str, str | None], status="FAILED"):
    job = baker.make(
        Job,
        user=operator,
        action=2,
        cluster=cluster,
        status=status,
        cluster_url=cluster.base_url,
        customer_count=len(outcomes),
    )
    for cid, outcome in outcomes.items():
        JobCustomer.objects.create(job=job, cid=cid, outcome=outcome)
    return job


def test_retry_sends_only_the_customers_that_failed(operator, cluster):
    old = _failed_job(operator, cluster, {"C1": "SUCCESS", "C2": "FAILED", "C3": "FAILED"})
    before = Job.objects.filter(pk=old.pk).values().get()
    [new] = job_retry(job=old, user=operator, token=TOKEN)
    assert new.retry_of == old
    assert (new.action, new.cluster) == (old.action, old.cluster)
    assert list(new.customers.order_by("pk").values_list("cid", flat=True)) == ["C2", "C3"]
    assert Job.objects.filter(pk=old.pk).values().get() == before
    assert AuditEntry.objects.filter(job_id=old.pk, event="job.retried").count() == 1


def test_retry_without_per_customer_outcomes_sends_all(operator, cluster):
    old = _failed_job(operator, cluster, {"C1": None, "C2": None})
    [new] = job_retry(job=old, user=operator, token=TOKEN)
    assert new.customer_count == 2


def test_retrying_a_job_again_needs_confirmation_naming_the_earlier_retry(operator, cluster):
    old = _failed_job(operator, cluster, {"C1": None})
    [first] = job_retry(job=old, user=operator, token=TOKEN, idempotency_key="retry-1")
    job_cancel(job_ids=[first.pk], user=operator)
    before = row_counts()

    with pytest.raises(ValidationError) as excinfo:
        job_retry(job=old, user=operator, token=TOKEN, idempotency_key="retry-2")

    assert excinfo.value.message_dict["confirm_again"] == [
        f"Job {old.pk} was already retried as {first.pk} (CANCELLED): "
        "confirm to run its customers again."
    ]
    assert row_counts() == before
    # The same retry form sent again is a replay of the first retry, not a second one.
    assert job_retry(job=old, user=operator, token=TOKEN, idempotency_key="retry-1") == [first]
    [second] = job_retry(
        job=old, user=operator, token=TOKEN, idempotency_key="retry-2", confirm_again=True
    )
    assert second.retry_of == old and second.pk != first.pk


def test_retry_of_unknown_job_needs_confirmation(operator, cluster):
    old = _failed_job(operator, cluster, {"C1": None}, status="UNKNOWN")
    with pytest.raises(ValidationError) as excinfo:
        job_retry(job=old, user=operator, token=TOKEN)
    assert "confirm_unknown" in excinfo.value.message_dict
    assert Job.objects.count() == 1
    [new] = job_retry(job=old, user=operator, token=TOKEN, confirm_unknown=True)
    assert new.retry_of == old


@pytest.mark.parametrize("status", ["SUCCESS", "IN_PROGRESS"])
def test_only_failed_or_unknown_jobs_can_be_retried(operator, cluster, status):
    old = _failed_job(operator, cluster, {"C1": None}, status=status)
    with pytest.raises(ValidationError, match="Only a FAILED or UNKNOWN job"):
        job_retry(job=old, user=operator, token=TOKEN)
    assert Job.objects.count() == 1


def test_retry_needs_a_new_token(operator, cluster):
    old = _failed_job(operator, cluster, {"C1": None})
    with pytest.raises(ValidationError) as excinfo:
        job_retry(job=old, user=operator, token="")
    assert "token" in excinfo.value.message_dict
    assert Job.objects.count() == 1


def test_operator_cannot_retry_another_operators_job(operator, cluster):
    other = baker.make("auth.User", username="op2")
    other.groups.add(*operator.groups.all())
    old = _failed_job(other, cluster, {"C1": None})
    with pytest.raises(PermissionDenied):
        job_retry(job=old, user=operator, token=TOKEN)


def test_job_run_on_unknown_id_does_nothing(db):
    assert job_run(job_id=uuid.uuid4()) is False


def test_a_submits_jobs_can_be_used_in_a_query_like_any_list(operator, cluster):
    jobs = job_submit(user=operator, action=1, cluster=cluster, cids="C1", token=TOKEN)
    assert jobs.replayed is False
    assert JobCustomer.objects.filter(job__in=jobs).count() == 1
