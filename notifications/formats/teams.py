"""Microsoft Teams (a Workflows or connector webhook): a message carrying one Adaptive Card
with the headline, the facts and a button to the event's page."""

from __future__ import annotations

from notifications.formats.text import facts, headline, link

CARD = "application/vnd.microsoft.card.adaptive"


def body(payload: dict) -> dict:
    title, url = link(payload)
    card_body: list[dict] = [
        {"type": "TextBlock", "text": headline(payload), "weight": "Bolder", "wrap": True}
    ]
    if shown := facts(payload):
        card_body.append({"type": "FactSet", "facts": [{"title": n, "value": v} for n, v in shown]})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": card_body,
        "actions": [{"type": "Action.OpenUrl", "title": title, "url": url}],
    }
    return {
        "type": "message",
        "attachments": [{"contentType": CARD, "contentUrl": None, "content": card}],
    }
