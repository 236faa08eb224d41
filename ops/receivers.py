"""Every failed sign-in is counted for the metrics, including those the audit trail leaves
out to stay unflooded (see audit.receivers) and those refused during a lock-out."""

from __future__ import annotations

from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from ops.counters import SIGNIN_FAILURES, counter_increment


@receiver(user_login_failed, dispatch_uid="ops_count_signin_failure")
def count_signin_failure(sender, credentials, request=None, **kwargs) -> None:
    counter_increment(SIGNIN_FAILURES)
