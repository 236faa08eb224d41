"""Saved Set Actions and the schedules that run them: once (`run_at`) or on an RFC 5545
recurrence in a time zone (lib.recurrence), each occurrence fired at most once across every
host by a unique (schedule, occurrence) row (schedules.services.scheduler)."""
