"""The address of the notification tasks in the queues of releases before they moved.

A task row stores the dotted path of the function it runs. Each task is declared beside its
body (notifications.delivery, notifications.events), where the code that queues it reaches it
without a module importing one that imports it back; rows queued before that move name
`notifications.tasks`, and a worker finds the tasks here.
"""

from __future__ import annotations

from notifications.delivery import deliver_notice
from notifications.events import record_batch_end

__all__ = ["deliver_notice", "record_batch_end"]
