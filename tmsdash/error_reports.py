"""Error reports that hide secrets with DEBUG on too.

Django's SafeExceptionReporterFilter hides sensitive POST parameters, variables marked with
`sensitive_variables` and settings named like secrets, but only when DEBUG is off; `make run`
and development run with DEBUG on, and the operator's token must appear on no page, ever.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter


class AlwaysSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    def is_active(self, request: HttpRequest | None) -> bool:
        return True
