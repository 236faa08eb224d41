"""LOG_FORMAT=json: one JSON object per line, for a log shipper."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# Context the dashboard attaches to its records (`extra=`), copied into the object when present.
FIELDS = ("job_id", "method", "path", "status", "duration_ms", "client")


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
