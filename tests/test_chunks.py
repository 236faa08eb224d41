"""lib.chunks.batched: the one chunking helper."""

from __future__ import annotations

import itertools

import pytest

from lib.chunks import batched


def test_batches_keep_order_and_the_last_one_is_shorter():
    assert list(batched("abcdefg", 3)) == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
    assert list(batched([], 3)) == []


def test_reads_its_input_lazily():
    endless = itertools.count()
    assert next(batched(endless, 2)) == [0, 1]
    assert next(endless) == 2


def test_refuses_a_size_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        next(batched([1, 2], 0))
