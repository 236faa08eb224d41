"""The two log formats: LOG_FORMAT=text, one readable line per record, and LOG_FORMAT=json, one
JSON object per line, for a log shipper.

Messages carry what the dashboard was sent: request paths, usernames, cluster names and
answers, mail servers' and webhooks' errors. Neither format lets such a value write a line of
its own, move the cursor or colour a terminal: JSON escapes control characters by itself, and
the text format escapes every character that is not printable (`escape`).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# Context the dashboard attaches to its records (`extra=`), copied into the object when present.
FIELDS = ("job_id", "method", "path", "status", "duration_ms", "client")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Lines of a record after its first (a traceback, a stack) start with this: a line that starts
# at its first column is always a record's first line, which a reader or a log shipper's
# multi-line rule can trust.
CONTINUATION = "    "

_NAMED_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(char: str) -> str:
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    if char.isprintable():
        return char
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text: str) -> str:
    """`text` with every character `str.isprintable` refuses written as a Python escape
    (`\\n`, `\\x1b`, `\\u2028`), and backslashes doubled so that an escape cannot be forged
    either. Printable non-ASCII text (`café`, `東京`) stays as it is."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escaped(char) for char in text)


class TextFormatter(logging.Formatter):
    """LOG_FORMAT=text: `time level logger message` on one line, the message escaped; a
    traceback or stack follows on lines of its own, each escaped and indented."""

    def __init__(self, fmt: str | None = None, *args, **kwargs) -> None:
        super().__init__(fmt or TEXT_FORMAT, *args, **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        # The message is escaped after the arguments are put in: they are what comes from
        # outside. What logging.Formatter.format does, but escaping each part, and without
        # its cached record.exc_text, which another handler's formatter may have written.
        record.message = escape(record.getMessage())
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        lines = [self.formatMessage(record)]
        if record.exc_info:
            lines.extend(self.formatException(record.exc_info).split("\n"))
        elif record.exc_text:
            lines.extend(record.exc_text.split("\n"))
        if record.stack_info:
            lines.extend(self.formatStack(record.stack_info).split("\n"))
        return "\n".join([lines[0], *(CONTINUATION + escape(line) for line in lines[1:])])


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({name: getattr(record, name) for name in FIELDS if hasattr(record, name)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
