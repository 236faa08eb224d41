"""Each webhook format's body as a real receiver on loopback gets it: Slack, Microsoft Teams,
PagerDuty (a retry's success resolves what its original triggered), and the generic one
unchanged; the routing key stored encrypted; an unknown format refused."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from jobs.models import Job
from notifications.delivery import notice_deliver
from notifications.endpoints import endpoint_save
from notifications.events import notices_record_job_end
from notifications.models import Notice, WebhookEndpoint
from tests.e2e import make_job
from tests.helpers import TOKEN, database_text, row_counts

pytestmark = pytest.mark.django_db

ROUTING_KEY = "R0ut1ngK3y-of-the-pagerduty-service-32"
Format = WebhookEndpoint.Format


def hook(receiver, format: str, **fields) -> WebhookEndpoint:
    events = ["job.failed", "job.unknown", "job.succeeded"]
    return endpoint_save(
        endpoint=WebhookEndpoint(
            name=f"{format}-hook",
            url=receiver.url,
            secret=receiver.secret,
            format=format,
            events=events,
            **fields,
        )
    )


def end(job: Job) -> None:
    """Write the job's notices as its end does, and deliver them."""
    notices_record_job_end(job_id=job.pk, status=job.status, reason=None)
    for notice in Notice.objects.filter(job=job):
        assert notice_deliver(notice_id=notice.pk)


def failed(operator, cluster, **fields) -> Job:
    fields.setdefault("error_message", "API returned status 500: boom")
    return make_job(operator, cluster, Job.Status.FAILED, http_status=500, **fields)


def test_slack_gets_a_text_fallback_and_blocks_with_a_link_to_the_job(operator, cluster, receiver):
    hook(receiver, Format.SLACK)
    job = failed(operator, cluster)
    end(job)

    [delivery] = receiver.received()
    assert delivery.signature_ok
    url = f"http://127.0.0.1:8000/jobs/{job.pk}/"
    said = f"Job {job.pk} FAILED: T-Enable on eu1"
    assert delivery.payload["text"] == f"{said} {url}"
    blocks = delivery.payload["blocks"]
    assert blocks[0] == {"type": "section", "text": {"type": "mrkdwn", "text": f"*{said}*"}}
    fields = [field["text"] for field in blocks[1]["fields"]]
    assert "*Operator*\nop1" in fields
    assert "*Error*\nAPI returned status 500: boom" in fields
    assert blocks[2]["text"]["text"] == f"<{url}|Open the job>"
    assert Notice.objects.get().state == Notice.State.SENT


def test_slack_text_escapes_its_markup(operator, cluster, receiver):
    hook(receiver, Format.SLACK)
    end(failed(operator, cluster, error_message="<!channel> & <http://evil|click>"))

    fields = [f["text"] for f in receiver.received()[0].payload["blocks"][1]["fields"]]
    assert "*Error*\n&lt;!channel&gt; &amp; &lt;http://evil|click&gt;" in fields


def test_teams_gets_a_message_with_an_adaptive_card(operator, cluster, receiver):
    hook(receiver, Format.TEAMS)
    job = make_job(operator, cluster, Job.Status.UNKNOWN)
    end(job)

    [delivery] = receiver.received()
    assert delivery.payload["type"] == "message"
    [attachment] = delivery.payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["body"][0]["text"] == f"Job {job.pk} outcome UNKNOWN: T-Enable on eu1"
    facts = {fact["title"]: fact["value"] for fact in card["body"][1]["facts"]}
    assert facts["Cluster"] == "eu1"
    assert facts["Customers"] == "2"
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Open the job",
            "url": f"http://127.0.0.1:8000/jobs/{job.pk}/",
        }
    ]


def test_pagerduty_retry_success_resolves_the_incident_its_original_triggered(
    operator, cluster, receiver
):
    hook(receiver, Format.PAGERDUTY, routing_key=ROUTING_KEY)
    original = failed(operator, cluster)
    end(original)
    retry = failed(operator, cluster, retry_of=original)
    end(retry)
    success = make_job(operator, cluster, Job.Status.SUCCESS, retry_of=retry)
    end(success)

    first, second, third = (d.payload for d in receiver.received())
    key = f"tmsdash-job-{original.pk}"
    assert first == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": f"Job {original.pk} FAILED: T-Enable on eu1",
            "severity": "error",
            "source": "eu1",
            "class": "job.failed",
            "custom_details": {
                "Cluster": "eu1",
                "Action": "T-Enable",
                "Operator": "op1",
                "Customers": "2",
                "Status": "FAILED",
                "HTTP status": "500",
                "Error": "API returned status 500: boom",
            },
        },
        "links": [{"href": f"http://127.0.0.1:8000/jobs/{original.pk}/", "text": "Open the job"}],
        "client": "tmsdash",
        "client_url": "http://127.0.0.1:8000",
    }
    assert (second["event_action"], second["dedup_key"]) == ("trigger", key)
    assert third == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": key}


def test_pagerduty_unknown_outcome_triggers_a_warning(operator, cluster, receiver):
    hook(receiver, Format.PAGERDUTY, routing_key=ROUTING_KEY)
    job = make_job(operator, cluster, Job.Status.UNKNOWN)
    end(job)

    [delivery] = receiver.received()
    assert delivery.payload["event_action"] == "trigger"
    assert delivery.payload["payload"]["severity"] == "warning"
    assert delivery.payload["dedup_key"] == f"tmsdash-job-{job.pk}"


def test_the_routing_key_is_stored_encrypted_and_never_in_the_outbox(operator, cluster, receiver):
    hook(receiver, Format.PAGERDUTY, routing_key=ROUTING_KEY)
    end(failed(operator, cluster))

    assert receiver.received()[0].payload["routing_key"] == ROUTING_KEY
    assert ROUTING_KEY not in database_text()
    assert WebhookEndpoint.objects.get().routing_key == ROUTING_KEY


def test_generic_format_is_the_signed_payload_unchanged(operator, cluster, receiver):
    hook(receiver, Format.GENERIC)
    job = failed(operator, cluster)
    end(job)

    [delivery] = receiver.received()
    assert delivery.signature_ok
    assert delivery.payload == Notice.objects.get().payload
    assert delivery.payload["job_id"] == str(job.pk)


def test_no_token_is_in_any_format(operator, cluster, receiver):
    for format in (Format.SLACK, Format.TEAMS):
        hook(receiver, format)
    hook(receiver, Format.PAGERDUTY, routing_key=ROUTING_KEY)
    end(failed(operator, cluster, token_fingerprint="f" * 64))

    assert len(receiver.received()) == 3
    for delivery in receiver.received():
        assert TOKEN not in delivery.body.decode()
        assert "f" * 64 not in delivery.body.decode()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"format": "carrier-pigeon"}, "format", "is not a valid choice"),
        ({"format": Format.PAGERDUTY}, "routing_key", "needs its integration (routing) key"),
        ({"format": Format.SLACK, "routing_key": ROUTING_KEY}, "routing_key", "leave it blank"),
    ],
)
def test_a_bad_format_or_key_is_refused_and_nothing_is_written(receiver, fields, field, message):
    before = row_counts()
    with pytest.raises(ValidationError) as refused:
        endpoint_save(endpoint=WebhookEndpoint(url=receiver.url, secret=receiver.secret, **fields))

    assert message in " ".join(refused.value.message_dict[field])
    assert row_counts() == before
