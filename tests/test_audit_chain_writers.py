"""Sixteen writers at once, each on its own database connection, leave one chain: every place
taken once (no fork), none skipped (no gap), every link the hash before it."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from audit.models import AuditEntry
from audit.services import audit_bulk_append, audit_record
from audit.verify import verify_chain

WRITERS = 16
RECORDS = 15
APPENDED = 10


def write(barrier: threading.Barrier, n: int, errors: list[BaseException]) -> None:
    try:
        barrier.wait()
        for i in range(RECORDS):
            audit_record(event=AuditEntry.Event.AUTH_LOGIN, actor_username=f"w{n}-{i}")
            if i == RECORDS // 2:
                with transaction.atomic():
                    audit_bulk_append(
                        [
                            AuditEntry(event="legacy.import", actor_username=f"w{n}-bulk{j}")
                            for j in range(APPENDED)
                        ]
                    )
    except BaseException as exc:
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_sixteen_concurrent_writers_leave_one_unbroken_chain():
    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []
    threads = [threading.Thread(target=write, args=(barrier, n, errors)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    total = WRITERS * (RECORDS + APPENDED)
    assert list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True)) == list(
        range(1, total + 1)
    )
    verdict = verify_chain()
    assert verdict.ok, verdict.broken
    assert verdict.checked == total
    # Each writer's appended batch sits in one run of places: a batch is never interleaved.
    for n in range(WRITERS):
        places = sorted(
            AuditEntry.objects.filter(actor_username__startswith=f"w{n}-bulk").values_list(
                "seq", flat=True
            )
        )
        assert places == list(range(places[0], places[0] + APPENDED))
