"""Where the chain starts: at GENESIS, or after the entries a purge took (audit.retention).

A purge keeps, in a ChainAnchor row, the last purged entry's place and hash. The walk from the
start (audit.verify) then expects the first kept entry at that place plus one, linked to that
hash: a forged anchor, or entries removed after it, are breaks as any other.
"""

from __future__ import annotations

from audit.chain import GENESIS
from audit.models import ChainAnchor


def chain_start() -> tuple[int, str]:
    """The first kept entry's expected place and link: (1, GENESIS) until a purge."""
    anchor = ChainAnchor.objects.order_by("-last_seq").values_list("last_seq", "last_hash")
    for last_seq, last_hash in anchor[:1]:
        return last_seq + 1, last_hash
    return 1, GENESIS


def purged_through() -> ChainAnchor | None:
    """The newest purge's anchor: every entry up to its `last_seq` is in archives only."""
    return ChainAnchor.objects.order_by("-last_seq").first()


def anchor_holding(seq: int) -> ChainAnchor | None:
    """The purge whose archive holds entry `seq`; None if it was not purged."""
    return ChainAnchor.objects.filter(first_seq__lte=seq, last_seq__gte=seq).first()
