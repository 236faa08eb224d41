"""JSON from outside (an API client, a cluster, a legacy dashboard's export) read with a bound
on its nesting.

json.loads recurses once per level: a body nested 100,000 deep raised RecursionError, which
nothing expected, and one nested a few hundred deep parses but can still exhaust the stack of
whatever walks it next (a serializer, json.dumps, a log line). No JSON this dashboard reads
needs more than a few levels, so deeper JSON is refused as a ValueError like any other
malformed JSON.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 32


class TooDeep(ValueError):
    """JSON nested deeper than the bound."""


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH, **options: Any) -> Any:
    """json.loads(text, **options), raising TooDeep (a ValueError) instead of returning JSON
    whose arrays and objects nest more than `max_depth` levels, and never RecursionError."""
    try:
        value = json.loads(text, **options)
    except RecursionError:
        raise TooDeep(_too_deep(max_depth)) from None
    # Walked with a list, not recursion, so that measuring the depth cannot exhaust the stack.
    pending = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > max_depth:
            raise TooDeep(_too_deep(max_depth))
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return value


def _too_deep(max_depth: int) -> str:
    return f"JSON nested more than {max_depth} levels deep"
