"""Every change to saved Set Actions, schedules and occurrences goes through this package.

- `access`: who may see and change one (its owner, or an admin).
- `saved`: saving a Set Action, checked as a submit is; editing it as a new version.
- `managing`: creating, pausing, resuming and deleting schedules.
- `upcoming`: a schedule's next occurrences, in UTC and its own zone.
- `approvals`: approving a schedule's version once, where an approval rule covers its runs.
- `scheduler`: the pass that decides and fires the due occurrences, once each.

Callers import from `schedules.services`.
"""

from __future__ import annotations

from schedules.services.access import may_manage
from schedules.services.approvals import (
    NothingToApprove,
    StaleVersion,
    VersionApproval,
    may_approve,
    schedule_approval_state,
    schedule_approve,
)
from schedules.services.managing import (
    schedule_create,
    schedule_delete,
    schedule_details,
    schedule_pause,
    schedule_resume,
)
from schedules.services.saved import (
    saved_set_action_create,
    saved_set_action_delete,
    saved_set_action_edit,
)
from schedules.services.scheduler import (
    LOOKBACK,
    MISSED_RECORDED,
    ON_TIME,
    SchedulerReport,
    scheduler_pass,
)
from schedules.services.upcoming import MAX_NEXT, Upcoming, schedule_next

__all__ = [
    "LOOKBACK",
    "MAX_NEXT",
    "MISSED_RECORDED",
    "ON_TIME",
    "NothingToApprove",
    "SchedulerReport",
    "StaleVersion",
    "Upcoming",
    "VersionApproval",
    "may_approve",
    "may_manage",
    "saved_set_action_create",
    "saved_set_action_delete",
    "saved_set_action_edit",
    "schedule_approval_state",
    "schedule_approve",
    "schedule_create",
    "schedule_delete",
    "schedule_details",
    "schedule_next",
    "schedule_pause",
    "schedule_resume",
    "scheduler_pass",
]
