"""The fast walk of the audit chain reports what the plain walk reports: the details hashed as
stored only when that proves the entry intact, and the walk cut into parts at once finding the
same first break, in the same words, for every kind of tampering and wherever the parts are
cut (the triggers dropped, as someone with the database's owner rights could)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from audit.chain import GENESIS, canonical, canonical_details, entry_hash
from audit.models import AuditEntry, ChainAnchor
from audit.services import audit_bulk_append
from audit.verify import content_matches, verify_chain
from audit.verify_parts import verify_in_parts

CHAIN = importlib.import_module("audit.migrations.0017_hash_chain")
START = dt.datetime(2099, 3, 1, 12, 0, tzinfo=dt.UTC)
COUNT = 12
MOMENT = "2026-12-07T08:55:00.123456Z"


def append(count: int = COUNT) -> list[AuditEntry]:
    audit_bulk_append(
        [
            AuditEntry(
                event="legacy.set_action",
                actor_username=f"user{n}",
                job_id="0b8f5e3c-9a2d-4f4e-8b7a-6c5d4e3f2a1b" if n % 2 else None,
                ip_address="2001:db8::1" if n % 3 else "127.0.0.1",
                created_at=START + dt.timedelta(minutes=n),
                details={"n": n, "name": 'Zoë "q"\n', "nested": {"b": 1, "a": [1.5, None]}},
            )
            for n in range(count)
        ]
    )
    return list(AuditEntry.objects.order_by("seq"))


@pytest.fixture
def entries(db) -> list[AuditEntry]:
    return append()


def tamper(sql: str, params: list | None = None) -> None:
    vendor = connection.vendor
    with connection.cursor() as cursor:
        for statement in CHAIN.DROP[vendor]:
            cursor.execute(statement)
        cursor.execute(sql, params or [])
        for statement in CHAIN.CREATE[vendor]:
            cursor.execute(statement)


def stored_text(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT details FROM audit_auditentry WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def change(entry):
    tamper("UPDATE audit_auditentry SET details = %s WHERE id = %s", ['{"n":99}', entry.pk])


def remove(entry):
    tamper("DELETE FROM audit_auditentry WHERE id = %s", [entry.pk])


def swap_with_next(entry):
    tamper("UPDATE audit_auditentry SET seq = -1 WHERE seq = %s", [entry.seq])
    tamper("UPDATE audit_auditentry SET seq = %s WHERE seq = %s", [entry.seq, entry.seq + 1])
    tamper("UPDATE audit_auditentry SET seq = %s WHERE seq = -1", [entry.seq + 1])


def rehash(entry):
    forged = entry_hash(
        entry.prev_hash,
        canonical(entry.seq, entry.created_at, "mallory", entry.event, None, None, {}),
    )
    tamper(
        "UPDATE audit_auditentry SET actor_username = 'mallory', job_id = NULL, "
        "ip_address = NULL, details = '{}', hash = %s WHERE id = %s",
        [forged, entry.pk],
    )


def move_out(entry):
    tamper("UPDATE audit_auditentry SET seq = %s WHERE id = %s", [-entry.seq, entry.pk])


def as_words(verdict) -> tuple:
    return (verdict.checked, verdict.first_seq, str(verdict.broken))


@pytest.mark.parametrize("kind", [change, remove, swap_with_next, rehash, move_out])
def test_the_walk_in_parts_reports_the_single_walks_first_break_wherever_it_is(entries, kind):
    for target in entries[:-1] if kind is swap_with_next else entries:
        with transaction.atomic():
            kind(target)
            single = verify_chain()
            # The last entry removed or rewritten leaves an intact chain: a published head
            # finds it (test_audit_chain).
            assert not single.ok or (kind in (remove, rehash) and target is entries[-1])
            for parts in (2, 3, 5, COUNT):
                assert as_words(verify_in_parts(parts=parts)) == as_words(single), (target, parts)
            since = verify_chain(since_seq=4)
            assert as_words(verify_in_parts(since_seq=4, parts=3)) == as_words(since)
            transaction.set_rollback(True)


def test_a_break_in_a_later_part_is_reported_only_when_none_is_before_it(entries):
    change(entries[9])
    later = verify_in_parts(parts=3)
    assert (later.broken.seq, later.checked) == (10, 9)
    assert "its content does not match its hash" in later.broken.problem
    remove(entries[5])
    first = verify_in_parts(parts=3)
    assert str(first.broken) == f"entry id {entries[6].pk} (seq 7): entries 6 to 6 of " + (
        "the chain are missing before it (removed, or renumbered)"
    )
    assert first.checked == 5


def test_a_rehashed_entry_at_the_last_place_of_a_part_is_found_at_the_next_parts_first(entries):
    rehash(entries[3])
    verdict = verify_in_parts(parts=3)
    assert str(verdict.broken).startswith(f"entry id {entries[4].pk} (seq 5): its link")
    assert verdict.checked == 4


def test_a_walk_read_in_small_windows_steps_over_a_removed_run_to_the_next_place(
    entries, monkeypatch
):
    monkeypatch.setattr("audit.verify.CHUNK", 2)
    assert verify_chain().checked == COUNT
    for entry in entries[3:8]:
        remove(entry)
    expected = f"entry id {entries[8].pk} (seq 9): entries 4 to 8 of the chain are missing"
    assert str(verify_chain().broken).startswith(expected)
    assert str(verify_in_parts(parts=2).broken).startswith(expected)


def test_an_intact_chain_walked_in_parts_has_the_single_walks_head(entries):
    assert dataclasses.astuple(verify_in_parts(parts=4)) == dataclasses.astuple(verify_chain())
    assert verify_in_parts(parts=4).head_hash == entries[-1].hash


@pytest.mark.parametrize("forged", [False, True])
def test_after_a_purge_the_parts_start_at_its_anchor_as_the_single_walk_does(entries, forged):
    for entry in entries[:4]:
        remove(entry)
    ChainAnchor.objects.create(
        first_seq=1,
        last_seq=4,
        last_hash=GENESIS if forged else entries[3].hash,
        archive="audit-1-4.jsonl.gz",
        archive_sha256="0" * 64,
    )
    single = verify_chain()
    assert single.ok is not forged and single.checked == (0 if forged else COUNT - 4)
    for parts in (2, 3, COUNT):
        assert as_words(verify_in_parts(parts=parts)) == as_words(single)


def test_an_empty_chain_walked_in_parts_is_intact(db):
    assert verify_in_parts(parts=3).checked == 0


@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_sqlite_stores_the_details_as_the_canonical_text_the_hash_covers(entries):
    for entry in entries:
        assert stored_text(entry.pk) == canonical_details(entry.details)


def test_details_equal_in_meaning_but_not_canonical_text_are_intact(entries):
    target = entries[4]
    spaced = '{"nested": {"a": [1.5, null], "b": 1}, "name": "Zo\\u00eb \\"q\\"\\n", "n": 4}'
    tamper("UPDATE audit_auditentry SET details = %s WHERE id = %s", [spaced, target.pk])
    assert verify_chain().ok
    assert verify_in_parts(parts=3).ok


def test_changed_details_stored_compact_are_found_naming_the_entry(entries):
    target = entries[4]
    compact = '{"n":4,"name":"Zoë","nested":{"a":[1.5,null],"b":1}}'
    tamper("UPDATE audit_auditentry SET details = %s WHERE id = %s", [compact, target.pk])
    verdict = verify_chain()
    assert str(verdict.broken) == (
        f"entry id {target.pk} (seq 5): its content does not match its hash (changed, or "
        "moved in the chain)"
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_verify_audit_in_processes_finds_a_break_in_its_second_part():
    entries = append(40)
    out = io.StringIO()
    call_command("verify_audit", "--workers", "2", stdout=out)
    assert f"40 entries verified, seq 1 to 40. Head: seq 40 hash {entries[-1].hash}" in (
        out.getvalue()
    )
    change(entries[29])
    change(entries[34])
    with pytest.raises(CommandError) as caught:
        call_command("verify_audit", "--workers", "2")
    assert f"entry id {entries[29].pk} (seq 30): its content does not match" in str(caught.value)
    assert "29 entries before it verified" in str(caught.value)


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_workers_refuses_what_is_not_a_number_of_processes(db, value):
    with pytest.raises(CommandError, match="not a number of processes"):
        call_command("verify_audit", "--workers", value)


@pytest.mark.parametrize(
    "details",
    [
        {"float": 1e16, "small": 1.5e-7, "big": 2**70, "negative": -0.0},
        {"text": 'Zoë \u2028 "q" \\ \x1f', "nested": {"b": [1, None, True], "a": {}}},
        {"empty": "", "list": [], "zero": 0, "unicode key é": "x"},
    ],
)
def test_every_shortcut_of_the_content_check_agrees_with_the_canonical_form(details):
    # Values the json module and orjson write differently (an exponent, an integer beyond
    # 64 bits, escapes) and the text PostgreSQL's jsonb gives (spaces, its key order).
    written = entry_hash(GENESIS, canonical(7, MOMENT, "ann", "job.failed", None, None, details))
    row = (1, 7, MOMENT, "ann", "job.failed", None, None, None, GENESIS, written)

    def stored(text: str) -> tuple:
        return (*row[:7], text, *row[8:])

    assert content_matches(stored(canonical_details(details)))
    assert content_matches(stored(json.dumps(details)))
    assert content_matches(stored(json.dumps(dict(reversed(details.items())), indent=1)))
    changed = {**details, "added": 1}
    assert not content_matches(stored(canonical_details(changed)))
    assert not content_matches(stored(json.dumps(changed)))


def test_a_number_written_otherwise_is_a_change_whatever_shortcut_reads_it():
    written = entry_hash(GENESIS, canonical(7, MOMENT, "", "job.failed", None, None, {"n": 1.0}))
    row = (1, 7, MOMENT, "", "job.failed", None, None, '{"n": 1}', GENESIS, written)
    assert not content_matches(row)
