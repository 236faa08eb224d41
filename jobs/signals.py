"""Signals the jobs send, for other apps to act on without `jobs` knowing them."""

from django.dispatch import Signal

# Sent inside the transaction that ends a job (SUCCESS, FAILED or UNKNOWN), with `job` (its
# cluster, action and started_at loaded), `status`, `finished_at`, and `reason` (the reaper's:
# "interrupted" or "not_started"; else None). A receiver's writes commit or roll back with it.
job_ended = Signal()

# The approval requests' life, each sent inside the transaction of the change, so that a
# receiver's writes (notices, counts) commit or roll back with it. Each has `request` (the
# ApprovalRequest) and `at` (when it happened).
# A submission now waits in `request` (the submit's transaction).
approval_requested = Signal()
# `request` is still pending at half its wait: sent once per request, by the housekeeping
# process whose compare-and-set took its reminder.
approval_reminder_due = Signal()
# `request` ended: `status` APPROVED, DENIED, EXPIRED or WITHDRAWN, `actor` the user who ended
# it (None: expiry, or a maintainer's withdrawal) and `comment` the decider's.
approval_decided = Signal()
