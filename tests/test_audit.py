"""The audit trail is append-only in the ORM and in the database."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction
from model_bakery import baker

from audit.models import AppendOnlyError, AuditEntry
from audit.services import audit_record
from jobs.models import Job


@pytest.fixture
def entry(operator):
    return audit_record(
        event=AuditEntry.Event.SET_ACTION_REQUESTED,
        actor=operator,
        ip_address="127.0.0.1",
        details={"cids": 2},
    )


def snapshot(pk: int) -> dict:
    return AuditEntry.objects.filter(pk=pk).values().get()


def test_audit_record_fills_actor_username(entry, operator):
    assert entry.actor == operator
    assert entry.actor_username == "op1"
    assert entry.details == {"cids": 2}


def test_saving_an_existing_entry_raises(entry):
    before = snapshot(entry.pk)
    entry.event = AuditEntry.Event.JOB_FAILED
    with pytest.raises(AppendOnlyError):
        entry.save()
    assert snapshot(entry.pk) == before


def test_queryset_update_raises(entry):
    before = snapshot(entry.pk)
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(event="job.failed")
    assert snapshot(entry.pk) == before


def test_bulk_update_raises(entry):
    before = snapshot(entry.pk)
    entry.event = AuditEntry.Event.JOB_FAILED
    with pytest.raises(AppendOnlyError), transaction.atomic():
        AuditEntry.objects.bulk_update([entry], ["event"])
    assert snapshot(entry.pk) == before


def test_deleting_an_entry_raises(entry):
    with pytest.raises(AppendOnlyError):
        entry.delete()
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_deleting_a_queryset_raises(entry):
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


RAW_CHANGES = {
    "created_at": dt.datetime(2001, 1, 1, tzinfo=dt.UTC),
    "actor_username": "mallory",
    "event": "job.failed",
    "job_id": "0b8f5e3c9a2d4f4e8b7a6c5d4e3f2a1b",
    "ip_address": "10.0.0.1",
    "details": '{"forged": true}',
    "actor_id": None,
    "seq": 999,
    "prev_hash": "f" * 64,
    "hash": "e" * 64,
}


def test_every_column_is_covered_by_the_raw_update_tests():
    # A column added to AuditEntry must be added here, and so is tested against the trigger.
    columns = {f.column for f in AuditEntry._meta.concrete_fields} - {"id"}
    assert columns == set(RAW_CHANGES)


@pytest.mark.parametrize("column", [c for c in RAW_CHANGES if c != "actor_id"])
def test_database_refuses_raw_update_of_any_column(entry, column):
    before = snapshot(entry.pk)
    value = RAW_CHANGES[column]
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE audit_auditentry SET {column} = %s WHERE id = %s",
            [value, entry.pk],
        )
    assert snapshot(entry.pk) == before


@pytest.mark.parametrize("column", [c for c in RAW_CHANGES if c != "actor_id"] + ["id"])
def test_database_refuses_raw_update_clearing_actor_while_changing_any_other_column(entry, column):
    """The one update the trigger lets through (actor_id to NULL when a user is deleted) must
    change nothing else: this fails for a column that the SQLite trigger does not list."""
    before = snapshot(entry.pk)
    value = RAW_CHANGES.get(column, entry.pk + 1000)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE audit_auditentry SET actor_id = NULL, {column} = %s WHERE id = %s",
            [value, entry.pk],
        )
    assert snapshot(entry.pk) == before


def test_database_refuses_a_raw_delete(entry):
    before = snapshot(entry.pk)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditentry WHERE id = %s", [entry.pk])
    assert snapshot(entry.pk) == before


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no TRUNCATE")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_database_refuses_truncate():
    # Committed first: PostgreSQL refuses TRUNCATE in a transaction with pending checks anyway.
    entry = audit_record(event=AuditEntry.Event.AUTH_LOGIN, actor_username="x")
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE audit_auditentry")
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_deleting_a_user_keeps_their_entries_with_the_username(entry):
    user = baker.make("auth.User", username="leaver")
    kept = audit_record(event=AuditEntry.Event.AUTH_LOGIN, actor=user)
    user.delete()
    kept = AuditEntry.objects.get(pk=kept.pk)
    assert kept.actor is None
    assert kept.actor_username == "leaver"
    assert kept.event == AuditEntry.Event.AUTH_LOGIN


def test_entry_survives_its_jobs_removal_unchanged(operator):
    job = baker.make(Job, user=operator, action=1, cluster_url="http://127.0.0.1:9100")
    entry = audit_record(event=AuditEntry.Event.SET_ACTION_REQUESTED, actor=operator, job_id=job.id)
    before = snapshot(entry.pk)
    Job.objects.filter(pk=job.pk).delete()
    assert snapshot(entry.pk) == before
    assert before["job_id"] == job.id
