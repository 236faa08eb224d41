"""Whether any webhook endpoint is active, known most of the time without a query: a job's end
asks it before reading anything for its notices, and with no endpoint active, no e-mail and no
batch, nobody would hear of the end and nothing is read.

"None active" is kept per process for LISTENING_TTL after a query found none; "some active" is
never kept (the notices' own read of the endpoints follows at once). A change of an endpoint
saved or deleted in this process forgets what was kept at once; one made in another process
or on another host (the web server's admin, a worker elsewhere) is seen within LISTENING_TTL:
a job that ends in those first seconds after the first endpoint was activated, in a process
that had found none, gives that endpoint no notice.
"""

from __future__ import annotations

import time

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from notifications.models import WebhookEndpoint

# Seconds a process trusts that no endpoint is active, after a query found none.
LISTENING_TTL = 5.0

# When this process's "none active" stops being trusted (time.monotonic()); None: not known.
_none_active_until: float | None = None


def endpoints_maybe_active(*, now: float | None = None) -> bool:
    """False when no webhook endpoint was active at a query at most LISTENING_TTL seconds ago
    (at `now`, time.monotonic() unless given) and none was saved or deleted in this process
    since; True otherwise, when one is, or may be."""
    global _none_active_until
    now = time.monotonic() if now is None else now
    if _none_active_until is not None and now < _none_active_until:
        return False
    if WebhookEndpoint.objects.filter(is_active=True).exists():
        _none_active_until = None
        return True
    _none_active_until = now + LISTENING_TTL
    return False


@receiver(post_save, sender=WebhookEndpoint, dispatch_uid="notifications_endpoint_saved")
@receiver(post_delete, sender=WebhookEndpoint, dispatch_uid="notifications_endpoint_deleted")
def forget_listening(sender, **kwargs) -> None:
    global _none_active_until
    _none_active_until = None
