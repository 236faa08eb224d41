"""What one legacy import did, counted as it goes, and how a caller hears of its progress."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Progress = Callable[[str, int, int], None]


@dataclass
class LegacyImportReport:
    """What an import did (or, for a dry run, would do)."""

    dry_run: bool
    generation: str = ""
    complete: bool = True
    jobs_read: int = 0
    jobs_imported: int = 0
    jobs_present: int = 0
    jobs_skipped: Counter[str] = field(default_factory=Counter)
    customers_imported: int = 0
    cids_dropped: int = 0
    orphan_customer_rows: int = 0
    users_created: list[str] = field(default_factory=list)
    audit_read: int = 0
    audit_imported: int = 0
    audit_present: int = 0
    audit_skipped: Counter[str] = field(default_factory=Counter)

    @property
    def imported_anything(self) -> bool:
        return bool(self.jobs_imported or self.audit_imported)

    def as_details(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "complete": self.complete,
            "jobs_read": self.jobs_read,
            "jobs_imported": self.jobs_imported,
            "jobs_already_present": self.jobs_present,
            "jobs_skipped": dict(self.jobs_skipped),
            "customers_imported": self.customers_imported,
            "cids_dropped": self.cids_dropped,
            "orphan_customer_rows": self.orphan_customer_rows,
            "users_created": self.users_created,
            "audit_read": self.audit_read,
            "audit_imported": self.audit_imported,
            "audit_already_present": self.audit_present,
            "audit_skipped": dict(self.audit_skipped),
        }
