"""purge_audit (audit.retention): the oldest entries archived in export_audit's format, read
back and checked before anything is deleted, the chain verifiable from the anchor afterwards,
one audit.purged entry, a dry run, bad input, and tampering with the anchor found."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import secrets
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.anchor import chain_start
from audit.models import AuditEntry, ChainAnchor, PurgePermit
from audit.retention import AuditArchiveError, audit_purge
from audit.services import audit_bulk_append, audit_record
from audit.verify import verify_chain
from ops.audit_watch import audit_chain_watch
from tests.helpers import row_counts
from tests.test_audit_chain import CHAIN, tamper
from tests.test_full_disk import small_disk

OLD = timezone.now() - dt.timedelta(days=40)
CUTOFF_DAYS = "30"


def write_old(count: int, start: dt.datetime = OLD) -> None:
    """`count` entries written before the cutoff, one second apart."""
    audit_bulk_append(
        [
            AuditEntry(
                event=AuditEntry.Event.AUTH_LOGIN,
                actor_username=f"old{n}",
                created_at=start + dt.timedelta(seconds=n),
                details={"n": n},
            )
            for n in range(count)
        ]
    )


def write_recent(count: int) -> None:
    for n in range(count):
        audit_record(event=AuditEntry.Event.AUTH_LOGOUT, actor_username=f"new{n}")


@pytest.fixture
def chain(db) -> tuple[int, int]:
    """300 entries before the cutoff, then 5 after it: (last old seq, last seq)."""
    write_old(300)
    old_head = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True)[0]
    write_recent(5)
    return old_head, old_head + 5


def purge(*args: str) -> str:
    out = io.StringIO()
    call_command("purge_audit", "--older-than", CUTOFF_DAYS, *args, stdout=out)
    return out.getvalue()


def verify(*args: str) -> str:
    out = io.StringIO()
    call_command("verify_audit", *args, stdout=out)
    return out.getvalue()


def broken(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        verify(*args)
    return str(caught.value)


def test_old_entries_go_into_an_archive_that_verifies_alone(chain, tmp_path, monkeypatch):
    monkeypatch.setattr("audit.retention.BATCH", 70)
    old_head, head = chain
    last_old = AuditEntry.objects.get(seq=old_head)
    archive = tmp_path / "audit.jsonl.gz"

    out = purge("--archive", str(archive))

    # The archive alone: export_audit's lines, seq 1 to the last old entry, linked from GENESIS.
    assert f"{old_head} entries verified, seq 1 to {old_head}" in verify("--file", str(archive))
    # The database: the entries written after the cutoff and the purge's own entry, verified
    # from the anchor (the first kept entry links to the last purged one).
    assert set(AuditEntry.objects.values_list("seq", flat=True)) == set(
        range(old_head + 1, head + 2)
    )
    assert chain_start() == (old_head + 1, last_old.hash)
    assert f"seq {old_head + 1} to {head + 1}" in verify()
    entry = AuditEntry.objects.get(event="audit.purged")
    assert entry.seq == head + 1 > old_head
    assert entry.details["first_seq"] == 1
    assert (entry.details["last_seq"], entry.details["last_hash"]) == (old_head, last_old.hash)
    assert (entry.details["archived"], entry.details["purged"]) == (old_head, old_head)
    assert entry.details["archive"] == str(archive)
    anchor = ChainAnchor.objects.get()
    assert anchor.archive_sha256 == entry.details["archive_sha256"]
    assert f"archive SHA-256: {anchor.archive_sha256}" in out
    assert "purged: 70 audit entries" in out and f"purged: {old_head} audit entries" in out
    for stage in ("archived", "written", "checked"):
        assert out.count(f"{stage}: {old_head} audit entries") == 1
    assert PurgePermit.objects.count() == 0


def test_a_second_purge_continues_from_the_first_ones_anchor(db, tmp_path):
    write_old(50, OLD - dt.timedelta(days=30))
    write_old(50)
    write_recent(2)
    audit_purge(cutoff=OLD - dt.timedelta(days=1), archive=tmp_path / "a.jsonl.gz")
    report = audit_purge(cutoff=timezone.now() - dt.timedelta(days=30), archive=tmp_path / "b")

    # 50 entries, then the first purge's entry (written after the cutoff), then 50 more; the
    # second archive starts after the first anchor and verifies taking its first link as given.
    assert (report.first_seq, report.last_seq) == (51, 100)
    assert "50 entries verified, seq 51 to 100" in verify("--file", str(tmp_path / "b"))
    assert verify_chain().ok
    assert ChainAnchor.objects.count() == 2


def test_an_archive_that_fails_its_read_back_deletes_nothing(chain, tmp_path, monkeypatch):
    monkeypatch.setattr("audit.retention.BATCH", 10)
    archive = tmp_path / "a.jsonl.gz"
    before = row_counts()

    def corrupt(stage: str, count: int) -> None:
        if stage == "written":
            text = gzip.decompress(archive.read_bytes())
            archive.write_bytes(gzip.compress(text.replace(b'"old7"', b'"mallory"', 1)))

    with pytest.raises(
        AuditArchiveError, match=r"its chain is broken at entry id \d+ \(seq 8\): its content"
    ):
        audit_purge(
            cutoff=timezone.now() - dt.timedelta(days=30), archive=archive, progress=corrupt
        )

    assert row_counts() == before


def test_an_archive_whose_bytes_changed_deletes_nothing(chain, tmp_path):
    archive = tmp_path / "a.jsonl.gz"
    before = row_counts()

    def recompress(stage: str, count: int) -> None:
        if stage == "written":
            # The same lines compressed otherwise: only the file's SHA-256 tells.
            text = gzip.decompress(archive.read_bytes())
            archive.write_bytes(gzip.compress(text, compresslevel=1, mtime=0))

    with pytest.raises(AuditArchiveError, match="SHA-256 is not that of the bytes written"):
        audit_purge(
            cutoff=timezone.now() - dt.timedelta(days=30), archive=archive, progress=recompress
        )

    assert row_counts() == before


def test_an_archive_cut_short_deletes_nothing(chain, tmp_path):
    archive = tmp_path / "a.jsonl.gz"
    before = row_counts()

    def cut(stage: str, count: int) -> None:
        if stage == "written":
            lines = gzip.decompress(archive.read_bytes()).splitlines(keepends=True)
            archive.write_bytes(gzip.compress(b"".join(lines[:-1])))

    with pytest.raises(AuditArchiveError, match="read back 299 entries, seq 1 to 299"):
        audit_purge(cutoff=timezone.now() - dt.timedelta(days=30), archive=archive, progress=cut)

    assert row_counts() == before


def test_entries_changed_after_they_were_archived_stop_the_delete(chain, tmp_path, monkeypatch):
    monkeypatch.setattr("audit.retention.BATCH", 100)
    vendor = connection.vendor

    def change(stage: str, count: int) -> None:
        if stage == "checked":
            # With the UPDATE guard dropped (the owner's rights), entry seq 150's content.
            with connection.cursor() as cursor:
                cursor.execute(CHAIN.DROP[vendor][0])
                cursor.execute("UPDATE audit_auditentry SET hash = %s WHERE seq = 150", ["0" * 64])
                cursor.execute(CHAIN.CREATE[vendor][0])

    with pytest.raises(AuditArchiveError, match="entries seq 101 to 200 are not the archived"):
        audit_purge(
            cutoff=timezone.now() - dt.timedelta(days=30), archive=tmp_path / "a", progress=change
        )

    # The first batch went, with its anchor; the changed batch and those after it stayed.
    assert AuditEntry.objects.filter(seq__lte=100).count() == 0
    assert AuditEntry.objects.filter(seq__gt=100, seq__lte=300).count() == 200
    assert ChainAnchor.objects.get().last_seq == 100
    assert AuditEntry.objects.get(event="audit.purged").details["last_seq"] == 100
    assert PurgePermit.objects.count() == 0


def test_a_dry_run_writes_and_deletes_nothing_and_says_what_would_go(chain, tmp_path):
    old_head, _ = chain
    before = row_counts()

    out = purge("--dry-run")

    assert row_counts() == before
    assert list(tmp_path.iterdir()) == []
    assert f"would purge {old_head} audit entries (seq 1 to {old_head})" in out


def test_nothing_to_purge_writes_no_archive_and_no_entry(db, tmp_path):
    write_recent(3)
    before = row_counts()

    out = purge("--archive", str(tmp_path / "a.jsonl.gz"))

    assert row_counts() == before
    assert list(tmp_path.iterdir()) == []
    assert "purged 0 of 0 archived audit entries (none)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "-3", "--archive", "a"], "--older-than"),
        (["--older-than", "0", "--archive", "a"], "--older-than"),
        (["--older-than", "30"], "--archive PATH is needed"),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(chain, tmp_path, args, message):
    before = row_counts()
    with pytest.raises(CommandError, match=message):
        call_command("purge_audit", *args, stdout=io.StringIO())
    assert row_counts() == before


def test_an_unwritable_or_existing_archive_stops_the_purge(chain, tmp_path):
    existing = tmp_path / "old.jsonl.gz"
    existing.write_bytes(b"earlier archive")
    before = row_counts()

    with pytest.raises(CommandError, match="never overwritten"):
        purge("--archive", str(existing))
    with pytest.raises(CommandError, match="cannot be written"):
        purge("--archive", str(tmp_path / "no-such-dir" / "a.jsonl.gz"))
    with pytest.raises(CommandError, match="cannot be written"):
        purge("--archive", "/dev/full/a.jsonl.gz")

    assert row_counts() == before
    assert existing.read_bytes() == b"earlier archive"


def test_a_disk_that_fills_up_while_archiving_deletes_nothing(db, tmp_path):
    audit_bulk_append(
        [
            AuditEntry(
                event=AuditEntry.Event.AUTH_LOGIN,
                created_at=OLD,
                # Random text: gzip cannot shrink it below the disk's size.
                details={"noise": secrets.token_hex(1000)},
            )
            for _ in range(200)
        ]
    )
    before = row_counts()

    with small_disk(tmp_path / "disk", "64k") as disk:
        with pytest.raises(CommandError, match=r"cannot be written.*No space left"):
            purge("--archive", str(disk / "a.jsonl.gz"))
        # The half-written archive is removed.
        assert list(disk.iterdir()) == []

    assert row_counts() == before


def test_a_delete_outside_the_purge_is_still_refused(chain, tmp_path):
    purge("--archive", str(tmp_path / "a.jsonl.gz"))
    kept = AuditEntry.objects.order_by("seq").first()

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM audit_auditentry WHERE id = %s", [kept.pk])
    assert AuditEntry.objects.filter(pk=kept.pk).exists()


def test_a_forged_anchor_is_a_break(chain, tmp_path):
    old_head, _ = chain
    purge("--archive", str(tmp_path / "a.jsonl.gz"))
    ChainAnchor.objects.update(last_hash="f" * 64)

    assert f"(seq {old_head + 1}): its link does not match" in broken()


def test_an_anchor_moved_over_kept_entries_is_a_break(chain, tmp_path):
    old_head, _ = chain
    purge("--archive", str(tmp_path / "a.jsonl.gz"))
    ChainAnchor.objects.update(last_seq=old_head - 1)

    assert f"(seq {old_head + 1}): entries {old_head} to {old_head} of the chain" in broken()


def test_an_entry_deleted_just_after_the_anchor_is_a_break(chain, tmp_path):
    old_head, _ = chain
    purge("--archive", str(tmp_path / "a.jsonl.gz"))
    tamper("DELETE FROM audit_auditentry WHERE seq = %s", [old_head + 1])

    message = broken()
    assert f"(seq {old_head + 2}): entries {old_head + 1} to {old_head + 1}" in message


def test_verify_since_a_purged_seq_says_where_the_entries_went(chain, tmp_path):
    old_head, _ = chain
    archive = tmp_path / "a.jsonl.gz"
    purge("--archive", str(archive))

    message = broken("--since", "5")
    assert (
        f"Entry seq 5 (--since) was purged, with seq 1 to {old_head}, into the archive " in message
    )
    assert f"{archive}" in message and f"--since {old_head + 1}." in message
    assert f"seq {old_head + 1} to" in verify("--since", "1")
    assert f"seq {old_head + 1} to" in verify("--since", str(old_head + 1))


def test_a_published_head_that_was_purged_names_its_archive(chain, tmp_path):
    old_head, _ = chain
    published = AuditEntry.objects.get(seq=old_head - 10).hash
    archive = tmp_path / "a.jsonl.gz"
    purge("--archive", str(archive))

    message = broken("--head", f"{old_head - 10}:{published}")
    assert f"Entry seq {old_head - 10} (--head) was purged" in message
    assert f"into the archive {archive}" in message
    assert "verified" in verify("--file", str(archive), "--head", f"{old_head - 10}:{published}")


def test_the_hourly_check_verifies_after_a_purge(chain, tmp_path):
    purge("--archive", str(tmp_path / "a.jsonl.gz"))

    verdict = audit_chain_watch(now=timezone.now())

    assert verdict is not None and verdict.ok


def test_the_whole_chain_purged_continues_from_the_anchor(db, tmp_path):
    write_old(20)
    report = audit_purge(
        cutoff=timezone.now() - dt.timedelta(days=30), archive=Path(tmp_path / "a.jsonl.gz")
    )

    # The purge's own entry, placed when no entry was left, follows the anchor.
    entry = AuditEntry.objects.get()
    assert (entry.seq, entry.prev_hash) == (21, report.anchor_hash)
    assert verify_chain().ok
