"""The jobs archive: a gzip-compressed JSON Lines file that purging writes and restoring reads.

The first line is the header, `{"kind": "header", "format": FORMAT, "version": 1, "cutoff":
ISO, "written_at": ISO}`; then one line per job, `{"kind": "job", "id": ..., "sha256": ...,
"job": {column: value}, "children": {"app.model": [rows]}, "links": {"app.model.column":
[ids]}}`; the last line is the footer, `{"kind": "footer", "jobs": N, "rows": {"app.model":
count}, "sequence_sha256": ...}`.

A job's `sha256` is the SHA-256 of its canonical JSON (its job, children and links, keys sorted,
no spaces, UTF-8); `sequence_sha256` is the SHA-256 of every job's sha256 in file order, so a
job line changed, lost, added or moved fails `archive_check`. Values are kept exactly: times
with their microseconds and offset, ids as text, JSON columns as they are.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import gzip
import hashlib
import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.apps import apps
from django.db import models

FORMAT = "tmsdash-jobs-archive"
VERSION = 1


class ArchiveError(Exception):
    """The archive cannot be read, or fails its check: the message says where and why."""


def plain(value: Any) -> Any:
    """A column's value as JSON keeps it exactly (times to the microsecond)."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    return value


def rows_of(model: type[models.Model], **filters: Any) -> list[dict[str, Any]]:
    """The rows of `model` matching `filters`, every column by its attribute name, by pk."""
    names = [f.attname for f in model._meta.concrete_fields]
    return [
        {name: plain(value) for name, value in row.items()}
        for row in model._default_manager.filter(**filters).order_by("pk").values(*names)
    ]


def instance_of(model: type[models.Model], row: dict[str, Any]) -> models.Model:
    """An unsaved `model` instance holding an archived row's values, converted back."""
    fields = {f.attname: f for f in model._meta.concrete_fields}
    return model(**{name: fields[name].to_python(value) for name, value in row.items()})


def model_of(label: str) -> type[models.Model]:
    return apps.get_model(label)


def job_digest(record: dict[str, Any]) -> str:
    """The SHA-256 of a job record's canonical JSON (its job, children and links)."""
    canonical = json.dumps(
        {key: record[key] for key in ("job", "children", "links")},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class ArchiveSummary:
    """What an archive holds: its jobs and rows per model, and its header."""

    jobs: int = 0
    rows: Counter = field(default_factory=Counter)
    header: dict[str, Any] = field(default_factory=dict)


class ArchiveWriter:
    """Writes an archive to `path`, which must not exist yet; `close()` writes the footer."""

    def __init__(self, path: Path, *, cutoff: dt.datetime, written_at: dt.datetime) -> None:
        self.path = path
        self.summary = ArchiveSummary()
        self._sequence = hashlib.sha256()
        # "x": an existing archive is never overwritten.
        self._raw = path.open("xb")
        self._file = gzip.GzipFile(fileobj=self._raw, mode="wb")
        self._line(
            {
                "kind": "header",
                "format": FORMAT,
                "version": VERSION,
                "cutoff": plain(cutoff),
                "written_at": plain(written_at),
            }
        )

    def _line(self, value: dict[str, Any]) -> None:
        self._file.write(json.dumps(value, ensure_ascii=False).encode() + b"\n")

    def add(self, record: dict[str, Any]) -> str:
        """Write one job's record (`job`, `children`, `links`); return its sha256."""
        digest = job_digest(record)
        self._sequence.update(digest.encode())
        self._line({"kind": "job", "id": record["job"]["id"], "sha256": digest, **record})
        self.summary.jobs += 1
        self.summary.rows["jobs.job"] += 1
        for label, rows in record["children"].items():
            self.summary.rows[label] += len(rows)
        return digest

    def close(self) -> None:
        self._line(
            {
                "kind": "footer",
                "jobs": self.summary.jobs,
                "rows": dict(sorted(self.summary.rows.items())),
                "sequence_sha256": self._sequence.hexdigest(),
            }
        )
        self._file.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()

    def discard(self) -> None:
        """Close and remove a half-written archive (on a full disk, closing fails too)."""
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            self._raw.close()
        self.path.unlink(missing_ok=True)


def archive_records(path: Path) -> Iterator[dict[str, Any]]:
    """Each job record of the archive at `path`, in file order, its sha256 checked; then
    the footer is checked against what was read. Raise ArchiveError at the first fault."""
    summary = ArchiveSummary()
    sequence = hashlib.sha256()
    footer = None
    try:
        with gzip.open(path, "rb") as file:
            for number, raw in enumerate(file, start=1):
                if footer is not None:
                    raise ArchiveError(f"{path}: line {number} follows the footer")
                line = json.loads(raw)
                kind = line.get("kind") if isinstance(line, dict) else None
                if number == 1:
                    if kind != "header" or line.get("format") != FORMAT:
                        raise ArchiveError(f"{path}: not a {FORMAT} file")
                    if line.get("version") != VERSION:
                        raise ArchiveError(f"{path}: version {line.get('version')} unknown")
                    summary.header = line
                elif kind == "job":
                    if job_digest(line) != line.get("sha256"):
                        raise ArchiveError(
                            f"{path}: line {number} (job {line.get('id')}) fails its SHA-256"
                        )
                    sequence.update(line["sha256"].encode())
                    summary.jobs += 1
                    yield line
                elif kind == "footer":
                    footer = line
                else:
                    raise ArchiveError(f"{path}: line {number} is not a job")
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise ArchiveError(f"{path}: unreadable ({exc})") from None
    if footer is None:
        raise ArchiveError(f"{path}: no footer (cut short)")
    if footer.get("jobs") != summary.jobs or footer.get("sequence_sha256") != sequence.hexdigest():
        raise ArchiveError(f"{path}: holds {summary.jobs} job(s), not the footer's")


def archive_check(path: Path, expected: ArchiveSummary) -> None:
    """Read the archive back whole: every line, every job's SHA-256, the footer, and the
    counts per model against what was written (`expected`). Raise ArchiveError if any differ."""
    read = ArchiveSummary()
    for record in archive_records(path):
        read.jobs += 1
        read.rows["jobs.job"] += 1
        for label, rows in record["children"].items():
            read.rows[label] += len(rows)
    if read.jobs != expected.jobs or +read.rows != +expected.rows:
        raise ArchiveError(
            f"{path}: read back {read.jobs} job(s) and {dict(read.rows)}, "
            f"written {expected.jobs} and {dict(expected.rows)}"
        )
