"""Customer IDs from an uploaded CSV file."""

from __future__ import annotations

import csv
import io

from django.core.exceptions import ValidationError

MAX_CSV_BYTES = 5 * 1024 * 1024
CID_HEADERS = {"cid", "customer_id"}
NOT_TEXT = "The file is not a CSV text file: save the spreadsheet as CSV (UTF-8) and upload that."
# Spreadsheets and documents a CSV is mistaken for: zip (xlsx, ods), OLE (xls), PDF.
_BINARY_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"%PDF")


def csv_read_cids(data: bytes) -> tuple[list[str], list[str]]:
    """The CIDs in a CSV file and, for each, where it stands ("line N").

    UTF-8 with or without a byte order mark, at most 5 MB. The CIDs are the column headed
    `cid`, `customer_id` or `CID`, or the only column of a file without such a header.
    Blank cells are skipped. Raises ValidationError naming the line of each problem.
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
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ValidationError(f"The CSV file could not be read: {exc}.") from None

    numbered = [(n, row) for n, row in enumerate(rows, start=1) if any(c.strip() for c in row)]
    if not numbered:
        raise ValidationError("The CSV file holds no customer IDs.")

    header = [cell.strip().lower() for cell in numbered[0][1]]
    columns = [i for i, name in enumerate(header) if name in CID_HEADERS]
    if columns:
        column, numbered = columns[0], numbered[1:]
    elif len(header) == 1:
        column = 0
    else:
        raise ValidationError(
            "The CSV file has several columns but none headed cid, customer_id or CID (line 1)."
        )

    cids, positions, errors = [], [], []
    for line, row in numbered:
        if len(row) <= column:
            errors.append(f"line {line} has no column {column + 1}")
            continue
        value = row[column].strip()
        if value:
            cids.append(value)
            positions.append(f"line {line}")
    if errors:
        shown = "; ".join(errors[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise ValidationError(f"The CSV file is malformed: {shown}{more}.")
    if not cids:
        raise ValidationError("The CSV file holds no customer IDs.")
    return cids, positions
