"""Customer IDs from an uploaded CSV file."""

from __future__ import annotations

import csv
import io
import itertools
from array import array
from collections.abc import Iterator, Sequence

from django.core.exceptions import ValidationError

MAX_CSV_BYTES = 5 * 1024 * 1024
CID_HEADERS = {"cid", "customer_id"}
NOT_TEXT = "The file is not a CSV text file: save the spreadsheet as CSV (UTF-8) and upload that."
# Spreadsheets and documents a CSV is mistaken for: zip (xlsx, ods), OLE (xls), PDF.
_BINARY_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"%PDF")


class LinePositions(Sequence[str]):
    """Where each of a file's CIDs stands ("line N"), kept as numbers: a label is made only
    when one is asked for (a problem to name), not 100,000 strings for every upload."""

    def __init__(self) -> None:
        self._lines = array("L")

    def append(self, line: int) -> None:
        self._lines.append(line)

    def __len__(self) -> int:
        return len(self._lines)

    def __getitem__(self, index: int) -> str:
        return f"line {self._lines[index]}"


def csv_read_cids(data: bytes) -> tuple[list[str], LinePositions]:
    """The CIDs in a CSV file and, for each, where it stands ("line N").

    UTF-8 with or without a byte order mark, at most 5 MB. The CIDs are the column headed
    `cid`, `customer_id` or `CID`, or the only column of a file without such a header.
    Blank cells are skipped. Raises ValidationError naming the line of each problem. The rows
    are read one at a time: only the CIDs are kept, not the file's rows.
    """
    if len(data) > MAX_CSV_BYTES:
        raise ValidationError(
            f"The CSV file is {len(data) / 1024 / 1024:.1f} MB; the limit is 5 MB."
        )
    # A NUL never stands in text; a binary file read as text would give nonsense IDs.
    if data.startswith(_BINARY_SIGNATURES) or b"\x00" in data:
        raise ValidationError(NOT_TEXT)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValidationError(f"{NOT_TEXT} (It is not UTF-8 from line {line}.)") from None
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        cids, positions, errors = _read(rows)
    except csv.Error as exc:
        raise ValidationError(f"The CSV file could not be read: {exc}.") from None
    if errors:
        shown = "; ".join(errors[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise ValidationError(f"The CSV file is malformed: {shown}{more}.")
    if not cids:
        raise ValidationError("The CSV file holds no customer IDs.")
    return cids, positions


def _read(rows: Iterator[list[str]]) -> tuple[list[str], LinePositions, list[str]]:
    """The CIDs of the rows, where each stands, and what is wrong with rows that have none."""
    numbered = ((n, row) for n, row in enumerate(rows, start=1) if any(c.strip() for c in row))
    first = next(numbered, None)
    if first is None:
        raise ValidationError("The CSV file holds no customer IDs.")
    header = [cell.strip().lower() for cell in first[1]]
    columns = [i for i, name in enumerate(header) if name in CID_HEADERS]
    if columns:
        column = columns[0]
    elif len(header) == 1:
        column, numbered = 0, itertools.chain([first], numbered)
    else:
        raise ValidationError(
            "The CSV file has several columns but none headed cid, customer_id or CID (line 1)."
        )
    cids, positions, errors = [], LinePositions(), []
    for line, row in numbered:
        if len(row) <= column:
            errors.append(f"line {line} has no column {column + 1}")
            continue
        value = row[column].strip()
        if value:
            cids.append(value)
            positions.append(line)
    return cids, positions, errors
