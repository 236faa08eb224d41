"""The audit trail is a hash chain: verify_audit finds the first entry changed, removed or
moved (with the triggers dropped, as someone with the database's owner rights could), and
export_audit writes a copy that verifies on its own."""

from __future__ import annotations

import datetime as dt
import importlib
import io
import itertools
import json
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.chain import GENESIS, canonical, entry_hash
from audit.models import AuditEntry
from audit.services import audit_bulk_append, audit_record

CHAIN = importlib.import_module("audit.migrations.0017_hash_chain")
# After the entries recorded now: the appended ones are the last written.
START = dt.datetime(2099, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def entries(db) -> list[AuditEntry]:
    """Six entries: three recorded one by one, three appended at once, one minute apart."""
    for n in range(3):
        audit_record(
            event=AuditEntry.Event.AUTH_LOGIN,
            actor_username=f"user{n}",
            ip_address="2001:db8::1" if n == 1 else "127.0.0.1",
            details={"n": n, "name": "Zoë", "nested": {"b": 1, "a": [1.5, None]}},
        )
    audit_bulk_append(
        [
            AuditEntry(
                event="legacy.set_action",
                actor_username="legacy",
                job_id="0b8f5e3c-9a2d-4f4e-8b7a-6c5d4e3f2a1b",
                created_at=START + dt.timedelta(minutes=n),
                details={"legacy_id": n},
            )
            for n in range(3)
        ]
    )
    return list(AuditEntry.objects.order_by("seq"))


def verify(*args: str) -> str:
    out = io.StringIO()
    call_command("verify_audit", *args, stdout=out)
    return out.getvalue()


def broken(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        verify(*args)
    return str(caught.value)


def tamper(sql: str, params: list | None = None) -> None:
    """Run raw SQL with the append-only triggers dropped, and put them back (the test's
    transaction is rolled back afterwards anyway)."""
    vendor = connection.vendor
    with connection.cursor() as cursor:
        for statement in CHAIN.DROP[vendor]:
            cursor.execute(statement)
        cursor.execute(sql, params or [])
        for statement in CHAIN.CREATE[vendor]:
            cursor.execute(statement)


def test_entries_are_chained_in_order_from_genesis(entries):
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5, 6]
    assert entries[0].prev_hash == GENESIS
    for before, entry in itertools.pairwise(entries):
        assert entry.prev_hash == before.hash
    first = entries[0]
    content = canonical(
        1, first.created_at, "user0", "auth.login", None, "127.0.0.1", first.details
    )
    assert first.hash == entry_hash(GENESIS, content)


def test_an_intact_chain_verifies_and_prints_its_head(entries):
    out = verify()
    assert f"Head: seq 6 hash {entries[-1].hash}" in out
    assert "6 entries verified, seq 1 to 6" in out


def test_an_update_with_the_triggers_dropped_is_found_naming_the_entry(entries):
    target = entries[2]
    tamper("UPDATE audit_auditentry SET details = %s WHERE id = %s", ['{"n": 99}', target.pk])
    message = broken()
    assert f"entry id {target.pk} (seq 3): its content does not match its hash" in message
    assert "2 entries before it verified" in message


def test_an_update_whose_hash_was_made_again_is_found_at_the_next_link(entries):
    target = entries[2]
    forged = entry_hash(
        target.prev_hash,
        canonical(3, target.created_at, "mallory", "auth.login", None, "127.0.0.1", {}),
    )
    tamper(
        "UPDATE audit_auditentry SET actor_username = 'mallory', details = '{}', hash = %s "
        "WHERE id = %s",
        [forged, target.pk],
    )
    message = broken()
    assert f"entry id {entries[3].pk} (seq 4): its link does not match" in message


def test_a_deleted_entry_is_found_at_the_gap_it_left(entries):
    tamper("DELETE FROM audit_auditentry WHERE id = %s", [entries[3].pk])
    message = broken()
    assert f"entry id {entries[4].pk} (seq 5): entries 4 to 4 of the chain are missing" in message


def test_a_deleted_first_entry_is_found(entries):
    tamper("DELETE FROM audit_auditentry WHERE id = %s", [entries[0].pk])
    assert f"entry id {entries[1].pk} (seq 2): entries 1 to 1" in broken()


def test_a_reordered_pair_is_found_at_the_first_of_the_two_places(entries):
    a, b = entries[3], entries[4]
    tamper("UPDATE audit_auditentry SET seq = -1 WHERE id = %s", [a.pk])
    tamper("UPDATE audit_auditentry SET seq = 4 WHERE id = %s", [b.pk])
    tamper("UPDATE audit_auditentry SET seq = 5 WHERE id = %s", [a.pk])
    assert f"entry id {b.pk} (seq 4): its content does not match its hash" in broken()


def test_two_entries_whose_times_were_swapped_are_found(entries):
    a, b = entries[3], entries[4]
    tamper("UPDATE audit_auditentry SET created_at = %s WHERE id = %s", [b.created_at, a.pk])
    tamper("UPDATE audit_auditentry SET created_at = %s WHERE id = %s", [a.created_at, b.pk])
    assert f"entry id {a.pk} (seq 4): its content does not match" in broken()


def test_since_a_seq_starts_from_that_entrys_stored_link(entries):
    tamper("UPDATE audit_auditentry SET details = '{}' WHERE id = %s", [entries[1].pk])
    assert "entry id" in broken()
    out = verify("--since", "3")
    assert "4 entries verified, seq 3 to 6" in out
    assert "entry id" in broken("--since", "2")


def test_since_a_time_starts_from_the_first_entry_written_then(entries):
    # The appended entries are dated START + 0, 1, 2 minutes: from +1 minute, the last two.
    out = verify("--since", (START + dt.timedelta(minutes=1)).isoformat())
    assert "2 entries verified, seq 5 to 6" in out


@pytest.mark.parametrize("value", ["yesterday", "-3", "12x"])
def test_since_refuses_what_is_neither_a_seq_nor_a_time(db, value):
    with pytest.raises(CommandError, match="neither a seq"):
        verify("--since", value)


def test_an_export_verifies_on_its_own_and_carries_the_stored_hashes(entries, tmp_path):
    path = tmp_path / "audit.jsonl"
    out = io.StringIO()
    call_command("export_audit", "--to", str(path), stdout=out)
    assert "6 audit entries exported, to seq 6." in out.getvalue()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(line["id"], line["hash"]) for line in lines] == [(e.pk, e.hash) for e in entries]
    assert lines[1]["ip_address"] == "2001:db8::1"
    assert lines[0]["details"]["name"] == "Zoë"
    assert f"Head: seq 6 hash {entries[-1].hash}" in verify("--file", str(path))
    assert "is not in the chain" in broken("--file", str(path), "--head", f"7:{'a' * 64}")
    assert "not the published" in broken("--file", str(path), "--head", f"6:{'a' * 64}")
    lines[4]["actor_username"] = "mallory"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    assert f"entry id {entries[4].pk} (seq 5): its content" in broken("--file", str(path))


def test_an_export_since_a_time_holds_the_rest_of_the_chain_and_verifies(entries, tmp_path):
    path = tmp_path / "audit.jsonl"
    since = (START + dt.timedelta(minutes=2)).isoformat()
    call_command("export_audit", "--since", since, "--to", str(path), stdout=io.StringIO())
    assert [json.loads(line)["seq"] for line in path.read_text().splitlines()] == [6]
    assert "1 entries verified, seq 6 to 6" in verify("--file", str(path))


def test_export_to_an_unwritable_place_is_a_clear_error(entries, tmp_path):
    with pytest.raises(CommandError, match="No such file or directory"):
        call_command("export_audit", "--to", str(tmp_path / "no" / "x.jsonl"))


def test_verify_refuses_a_file_that_is_not_an_export(db, tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"seq": 1}\n')
    with pytest.raises(CommandError, match="line 1 is not an exported audit entry"):
        verify("--file", str(path))


def test_the_migration_chains_existing_entries_as_the_writers_would(entries):
    """Entries written before the chain existed: the migration's backfill gives them the
    places and hashes, in id order, that the services give new entries."""
    tamper("UPDATE audit_auditentry SET seq = -id, prev_hash = '', hash = ''")
    assert "entry id" in broken()
    tamper("SELECT 1")
    vendor = connection.vendor
    with connection.cursor() as cursor:
        for statement in CHAIN.DROP[vendor]:
            cursor.execute(statement)
    CHAIN.chain_existing(None, SimpleNamespace(connection=connection))
    with connection.cursor() as cursor:
        for statement in CHAIN.CREATE[vendor]:
            cursor.execute(statement)
    again = list(AuditEntry.objects.order_by("seq").values_list("pk", "seq", "hash"))
    assert again == [(e.pk, e.seq, e.hash) for e in entries]
    assert "6 entries verified" in verify()


def test_a_published_head_that_was_rewritten_or_removed_is_found(entries):
    head = f"4:{entries[3].hash}"
    assert "Head: seq 6" in verify("--head", head)
    # The whole chain made again from seq 4 on verifies alone; the published head does not.
    tamper("UPDATE audit_auditentry SET hash = %s WHERE id = %s", ["a" * 64, entries[3].pk])
    assert f"Entry seq 4 has hash {'a' * 64}, not the published" in broken(
        "--since", "5", "--head", head
    )
    tamper("DELETE FROM audit_auditentry WHERE seq >= 4")
    assert "The published head seq 4 is not in the chain" in broken("--head", head)


@pytest.mark.parametrize("value", ["4", "x:" + "a" * 64, "0:" + "a" * 64, "4:" + "A" * 64])
def test_head_refuses_what_is_not_seq_and_hash(db, value):
    with pytest.raises(CommandError, match="is not a head"):
        verify("--head", value)
