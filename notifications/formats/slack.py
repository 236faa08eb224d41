"""Slack's incoming webhooks: `text` for notifications and clients without blocks, `blocks`
for the message (a headline, the facts, a link)."""

from __future__ import annotations

from notifications.formats.text import facts, headline, link

# Slack shows at most ten fields in a section.
MAX_FIELDS = 10


def escape(text: str) -> str:
    """Slack's mrkdwn reads &, < and > as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def body(payload: dict) -> dict:
    title, url = link(payload)
    said = headline(payload)
    blocks: list[dict] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{escape(said)}*"}}
    ]
    fields = [
        {"type": "mrkdwn", "text": f"*{escape(name)}*\n{escape(value)}"}
        for name, value in facts(payload)[:MAX_FIELDS]
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    blocks.append(
        {"type": "section", "text": {"type": "mrkdwn", "text": f"<{url}|{escape(title)}>"}}
    )
    return {"text": f"{escape(said)} {url}", "blocks": blocks}
