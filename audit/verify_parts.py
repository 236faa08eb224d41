"""Walking the audit chain in parts at once: the places from the first to the last cut into
ranges, each walked on its own (audit.verify.walk, its first entry's place and link taken as
given), in processes of their own with a database connection each; then the parts are joined
in chain order, each one's first entry checked against the entry before it (the previous
part's last) as the single walk checks every entry: its place follows, its content matches its
hash, its link is that entry's hash. So the break reported is the single walk's first break,
in the same words, and the entries counted before it the same.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain

from django.db import connection, connections

from audit.anchor import chain_start
from audit.verify import (
    CONTENT_CHANGED,
    GENESIS,
    LAST_SEQ,
    Break,
    Verdict,
    finish,
    link_problem,
    place_problem,
    stored_rows,
    verify_chain,
    walk,
)


@dataclass(frozen=True)
class Part:
    """A part's walk, and its first entry's id and link (None when the part is empty)."""

    verdict: Verdict
    first_id: int | None = None
    first_prev: str = GENESIS


def walk_part(bounds: tuple[int, int]) -> Part:
    """Walk the places from bounds[0] to bounds[1], the first entry's link as given."""
    rows = stored_rows(*bounds)
    first = next(rows, None)
    if first is None:
        return Part(Verdict(0, 0, 0, GENESIS))
    verdict = walk(chain([first], rows), None)
    rows.close()
    return Part(verdict, first[0], first[8])


def cut(low: int, high: int, parts: int) -> list[tuple[int, int]]:
    """`parts` ranges of places from `low` to `high`, the last open-ended (entries written
    during the walk are in it, as they are in the single walk)."""
    size = max(1, -(-(high - low + 1) // parts))
    bounds = [(first, first + size - 1) for first in range(low, max(high, low) + 1, size)]
    bounds[-1] = (bounds[-1][0], LAST_SEQ)
    return bounds


def join(parts: Iterable[Part], start: tuple[int, str] | None) -> Verdict:
    """The parts' walks as one walk, in chain order, the first entry expected at `start`
    (taken as given when None)."""
    checked, first_seq = 0, 0
    head_seq, head_hash = (start[0] - 1, start[1]) if start else (0, GENESIS)
    before = start is not None
    for part in parts:
        verdict = part.verdict
        if part.first_id is None:
            continue
        first = verdict.first_seq
        first_seq = first_seq or first
        if before:
            problem = None
            if first != head_seq + 1:
                problem = place_problem(head_seq + 1, first)
            elif verdict.broken and verdict.broken.seq == first:
                problem = CONTENT_CHANGED
            elif part.first_prev != head_hash:
                problem = link_problem(first)
            if problem:
                broken = Break(first, part.first_id, problem)
                return Verdict(checked, first_seq, head_seq, head_hash, broken)
        if verdict.broken:
            return Verdict(
                checked + verdict.checked,
                first_seq,
                verdict.head_seq,
                verdict.head_hash,
                verdict.broken,
            )
        checked += verdict.checked
        head_seq, head_hash, before = verdict.head_seq, verdict.head_hash, True
    return Verdict(checked, first_seq, head_seq, head_hash)


def verify_in_parts(*, since_seq: int | None = None, parts: int, run: Callable = map) -> Verdict:
    """verify_chain's walk cut into `parts`, each walked by `run` (map: one after another,
    in this process)."""
    from_start = since_seq is None or since_seq <= 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT MIN(seq), MAX(seq) FROM audit_auditentry WHERE seq >= %s", [since_seq or 1]
        )
        low, high = cursor.fetchone()
    if low is None:
        low = high = since_seq or 1
    walked = run(walk_part, cut(low, high, parts))
    return finish(join(walked, chain_start() if from_start else None), from_start)


def verify_chain_at_once(*, since_seq: int | None = None, workers: int) -> Verdict:
    """verify_chain in `workers` processes at once, each with a database connection of its
    own. One process walks it when one is asked, or when this one cannot share its database
    with processes it forks: in a transaction (the others would not see what it wrote), or
    with SQLite in memory."""
    if workers <= 1 or not _forkable():
        return verify_chain(since_seq=since_seq)
    connections.close_all()
    with multiprocessing.get_context("fork").Pool(workers) as pool:

        def run(function, bounds):
            return pool.map(function, bounds, chunksize=1)

        return verify_in_parts(since_seq=since_seq, parts=workers, run=run)


def _forkable() -> bool:
    if connection.in_atomic_block or "fork" not in multiprocessing.get_all_start_methods():
        return False
    return not (connection.vendor == "sqlite" and connection.is_in_memory_db())


def default_workers() -> int:
    return os.cpu_count() or 1
