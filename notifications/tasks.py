from __future__ import annotations

import uuid

from django_tasks import task


@task()
def deliver_notice(notice_id: str) -> None:
    """Try to deliver one notice when it is due (see notifications.delivery)."""
    from notifications.delivery import notice_deliver

    notice_deliver(notice_id=uuid.UUID(notice_id))


@task()
def record_batch_end(batch_id: str) -> None:
    """Write a batch's notices if all its parts have ended (see notifications.events)."""
    from notifications.events import notices_record_batch_end

    notices_record_batch_end(batch_id=uuid.UUID(batch_id))
