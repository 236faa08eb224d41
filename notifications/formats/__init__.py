"""What a webhook endpoint is sent, in the format it was set up with: one small module per
format, each turning a notice's payload into the body its receiver reads.

The generic format is the payload itself, signed (notifications.webhooks). Slack, Teams and
PagerDuty get the event in operators' words (notifications.formats.text) with a link to it on
TMS_PUBLIC_URL. Bodies are built when a notice is sent, never stored: PagerDuty's routing key is
read from the endpoint then, and the outbox keeps only the payload.
"""

from __future__ import annotations

from notifications.formats import pagerduty, slack, teams
from notifications.formats.lineage import lineage_root
from notifications.models import Notice, WebhookEndpoint

Format = WebhookEndpoint.Format


def webhook_body_for(notice: Notice) -> dict:
    """The JSON body to post for `notice` to its endpoint."""
    endpoint = notice.endpoint
    if endpoint.format == Format.SLACK:
        return slack.body(notice.payload)
    if endpoint.format == Format.TEAMS:
        return teams.body(notice.payload)
    if endpoint.format == Format.PAGERDUTY:
        root = lineage_root(notice.job_id) if notice.job_id else None
        return pagerduty.body(notice.payload, routing_key=endpoint.routing_key, lineage=root)
    return notice.payload
