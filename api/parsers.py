"""The API's one body parser: JSON whose nesting is bounded (lib.boundedjson), so that a body
nested 100,000 deep is a 400 problem like any other malformed JSON, not a RecursionError.

Its size is bounded before it is parsed: DRF reads a JSON body through `request.body`, which
refuses one larger than DATA_UPLOAD_MAX_MEMORY_SIZE (api.problems answers that too).
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils.json import strict_constant

from lib import boundedjson


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        encoding = get_encoding(parser_context or {})
        try:
            return boundedjson.loads(
                stream.read().decode(encoding),
                parse_constant=strict_constant if self.strict else None,
            )
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
