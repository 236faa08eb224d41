"""The release's version and the User-Agent of every call the dashboard makes.

It lives at the bottom, in `lib`, so that the modules that call out (jobs.upstream,
notifications.webhooks) name it without importing the project package `tmsdash`, which
imports the apps through its URLs and settings.
"""

from __future__ import annotations

__version__ = "0.1.0"
USER_AGENT = f"tmsdash/{__version__}"
