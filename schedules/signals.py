"""Signals the schedules send, for other apps to act on without `schedules` knowing them."""

from django.dispatch import Signal

# Sent inside the transaction that records a FAILED occurrence, with `occurrence` (its
# schedule, saved Set Action and owner loaded) and `at` (when the scheduler decided it). A
# receiver's writes (notices) commit or roll back with it.
occurrence_failed = Signal()
