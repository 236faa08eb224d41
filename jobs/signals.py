"""Signals the jobs send, for other apps to act on without `jobs` knowing them."""

from django.dispatch import Signal

# Sent inside the transaction that ends a job (SUCCESS, FAILED or UNKNOWN), with `job` (its
# cluster, action and started_at loaded), `status`, `finished_at`, and `reason` (the reaper's:
# "interrupted" or "not_started"; else None). A receiver's writes commit or roll back with it.
job_ended = Signal()
