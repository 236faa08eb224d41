"""purge_audit while the web and workers keep writing: their entries go on the chain's head
unharmed, a DELETE from anyone else is still refused while a batch holds its permit, and the
permit never outlives a batch."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from audit.models import AuditEntry, PurgePermit
from audit.retention import audit_purge
from audit.services import audit_record
from audit.verify import verify_chain
from tests.test_purge_audit import write_old

WRITERS = 4
RECORDS = 20


def refused_delete(pk: int) -> bool:
    """Try to delete one entry on this thread's connection: True if the database refused."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditentry WHERE id = %s", [pk])
    except DatabaseError as exc:
        return "append-only" in str(exc)
    return False


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_writers_and_deleters_during_a_purge(tmp_path, monkeypatch):
    monkeypatch.setattr("audit.retention.BATCH", 20)
    write_old(300)
    audit_record(event=AuditEntry.Event.AUTH_LOGOUT, actor_username="kept")
    kept = AuditEntry.objects.get(actor_username="kept")
    cutoff = timezone.now() - dt.timedelta(days=30)
    started, wrote, done = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []
    outcomes: list[bool] = []

    def progress(stage: str, count: int) -> None:
        if stage == "checked":
            started.set()
        if stage == "purged":
            # The writers write between the purge's batches, not only before or after it.
            wrote.wait(60)
            # Between batches, the purge's own connection holds no permit either.
            outcomes.append(refused_delete(kept.pk))

    def writer(n: int) -> None:
        try:
            started.wait(60)
            for i in range(RECORDS):
                audit_record(event=AuditEntry.Event.AUTH_LOGIN, actor_username=f"w{n}-{i}")
                wrote.set()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def deleter() -> None:
        try:
            started.wait(60)
            while not done.is_set():
                outcomes.append(refused_delete(kept.pk))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    threads.append(threading.Thread(target=deleter))
    for thread in threads:
        thread.start()
    try:
        report = audit_purge(cutoff=cutoff, archive=tmp_path / "a.jsonl.gz", progress=progress)
    finally:
        started.set()
        wrote.set()
        done.set()
        for thread in threads:
            thread.join()

    assert errors == []
    assert report.purged == 300
    assert outcomes and all(outcomes)
    assert AuditEntry.objects.filter(pk=kept.pk).exists()
    # Every entry written after the cutoff stays: the kept one, the writers', the purge's.
    assert AuditEntry.objects.filter(created_at__lt=cutoff).count() == 0
    assert AuditEntry.objects.count() == 1 + WRITERS * RECORDS + 1
    purged_entry = AuditEntry.objects.get(event="audit.purged")
    assert purged_entry.seq > report.last_seq
    assert AuditEntry.objects.filter(actor_username__startswith="w", seq__lt=purged_entry.seq)
    verdict = verify_chain()
    assert verdict.ok, verdict.broken
    assert PurgePermit.objects.count() == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_permit_not_committed_lets_no_other_transaction_delete():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has one writer: no other transaction writes while a batch does")
    audit_record(event=AuditEntry.Event.AUTH_LOGOUT, actor_username="kept")
    kept = AuditEntry.objects.get()
    holding, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def purge_batch() -> None:
        # What a batch of audit.retention does, held open: the permit inserted, not committed.
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("INSERT INTO audit_purgepermit DEFAULT VALUES")
                holding.set()
                release.wait(60)
                cursor.execute("DELETE FROM audit_purgepermit")
        except BaseException as exc:
            errors.append(exc)
        finally:
            holding.set()
            connections.close_all()

    thread = threading.Thread(target=purge_batch)
    thread.start()
    try:
        holding.wait(60)
        refused = refused_delete(kept.pk)
    finally:
        release.set()
        thread.join()

    assert errors == []
    assert refused
    assert AuditEntry.objects.filter(pk=kept.pk).exists()
    assert PurgePermit.objects.count() == 0
