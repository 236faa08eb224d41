from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from jobs.csvinput import MAX_CSV_BYTES, csv_read_cids


def read(data: bytes) -> tuple[list[str], list[str]]:
    cids, positions = csv_read_cids(data)
    return cids, list(positions)


@pytest.mark.parametrize("header", ["cid", "customer_id", "CID", " Customer_ID "])
def test_reads_the_cid_column_under_a_known_header(header):
    data = f"name,{header}\nAcme,C1\nBeta,C2\n".encode()
    assert read(data) == (["C1", "C2"], ["line 2", "line 3"])


def test_reads_a_single_column_without_header_and_skips_blank_lines():
    assert read(b"C1\n\n C2 \r\nC3") == (
        ["C1", "C2", "C3"],
        ["line 1", "line 3", "line 4"],
    )


def test_byte_order_mark_is_ignored():
    assert read("\ufeffcid\nC1\n".encode()) == (["C1"], ["line 2"])


def test_several_columns_without_a_cid_header_are_refused():
    with pytest.raises(ValidationError, match="none headed cid"):
        csv_read_cids(b"a,b\n1,2\n")


def test_short_rows_are_named_by_line():
    with pytest.raises(ValidationError, match="line 3 has no column 2"):
        csv_read_cids(b"name,cid\nAcme,C1\nBeta\n")


def test_not_utf8_is_refused_with_its_line():
    with pytest.raises(ValidationError, match=r"not a CSV text file.*not UTF-8 from line 2"):
        csv_read_cids(b"cid\nC\xff1\n")


@pytest.mark.parametrize("data", [b"", b"\n\n", b"cid\n", b"cid\n  \n"])
def test_a_file_without_cids_is_refused(data):
    with pytest.raises(ValidationError, match="no customer IDs"):
        csv_read_cids(data)


def test_a_file_over_5_mb_is_refused():
    with pytest.raises(ValidationError, match="the limit is 5 MB"):
        csv_read_cids(b"C1\n" * (MAX_CSV_BYTES // 3 + 1))
