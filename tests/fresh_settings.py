"""Settings loaded in a fresh interpreter, from exactly the environment a test gives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTING_NAMES = [
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "TMS_SQLITE_BUSY_TIMEOUT",
    "TIME_ZONE",
    "LOG_LEVEL",
    "SECURE_COOKIES",
    "CSRF_TRUSTED_ORIGINS",
    "TMS_ALLOWED_CLUSTER_HOSTS",
    "TMS_CID_PATTERN",
    "TMS_MAX_CIDS",
    "TMS_REAP_GRACE",
    "TMS_QUEUE_EXPIRY",
    "TMS_WORKER_CONCURRENCY",
    "TMS_TOKEN_KEY",
    "TMS_DEVTOOLS",
    "TMS_ALLOW_LINK_LOCAL_CLUSTERS",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "TMS_TRUSTED_PROXIES",
    "TMS_SIGNIN_FAILURE_LIMIT",
    "TMS_SIGNIN_COOLOFF",
    "TMS_SESSION_LIFETIME",
    "TMS_SESSION_IDLE_TIMEOUT",
    "STATIC_ROOT",
    "LOG_FORMAT",
    "TMS_METRICS_TOKEN",
    "TMS_API_TOKEN_DAYS",
    "TMS_API_TOKEN_MAX_DAYS",
    "TMS_API_TOKEN_NEVER_EXPIRES",
    "TMS_API_TOKENS_PER_USER",
    "TMS_API_TOKENS_KEEP_DAYS",
    "TMS_API_SUBMITS_PER_MINUTE",
    "TMS_API_READS_PER_MINUTE",
    "TMS_API_WAITS_PER_TOKEN",
    "TMS_API_WAITS_PER_PROCESS",
    "TMS_WEB_BIND",
    "TMS_WEB_PROCESSES",
    "TMS_WEB_THREADS",
    "TMS_PUBLIC_URL",
    "EMAIL_URL",
    "DEFAULT_FROM_EMAIL",
    "TMS_NOTIFY_DIGEST_AFTER",
    "TMS_NOTIFY_DIGEST_WINDOW",
    "TMS_NOTIFY_RETRY_FIRST",
    "TMS_NOTIFY_RETRY_FOR",
    "TMS_ALLOWED_WEBHOOK_HOSTS",
    "OIDC_ISSUER",
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
    "OIDC_PROVIDER_NAME",
    "OIDC_SCOPES",
    "OIDC_GROUPS_CLAIM",
    "OIDC_GROUP_MAP",
    "OIDC_USERNAME_CLAIM",
    "OIDC_EMAIL_CLAIM",
    "OIDC_SESSION_MAX_AGE",
    "OIDC_RENEW_SECONDS",
    "OIDC_TIMEOUT",
    "TMS_LOCAL_SIGNIN",
    "TMS_BREAK_GLASS_USERS",
]


def run_python(argv: list[str], overrides: dict[str, str]) -> subprocess.CompletedProcess:
    """Run in a fresh interpreter with none of the settings' variables set but `overrides`.

    No local .env either, unless `overrides` names one in ENV_FILE.
    """
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env.update({"DJANGO_SETTINGS_MODULE": "tmsdash.settings", "ENV_FILE": "/dev/null"})
    env.update(overrides)
    return subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def start(show: str = "'started'", **overrides: str) -> subprocess.CompletedProcess:
    """Load the settings with exactly these variables set and print `show` (an expression)."""
    code = f"import django; django.setup(); from django.conf import settings; print({show})"
    return run_python(["-c", code], overrides)
