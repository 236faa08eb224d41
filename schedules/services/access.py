"""Who may see and change a saved Set Action or a schedule: its owner, or an admin."""

from __future__ import annotations


def may_manage(user, owner_id: int) -> bool:
    return bool(user.is_active and (user.is_superuser or user.pk == owner_id))
