"""Settings for tmsdash, read from the environment.

Every variable is listed, with its default and meaning, in `.env.example` and docs/configuration.md.
A malformed value stops start-up with an ImproperlyConfigured error that names the variable;
a value is never echoed back, since some (SECRET_KEY, DATABASE_URL) are secrets.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import urllib.parse
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from tmsdash.env_parsers import (
    _ENGINES,
    _at_most,
    _audit_retention_days,
    _bool,
    _choice,
    _count,
    _database,
    _email,
    _fernet_key,
    _group_map,
    _issuer,
    _list,
    _log_level,
    _not_placeholder,
    _positive_int,
    _regex,
    _seconds,
    _secret,
    _time_zone,
    _url,
    env,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"


# A local .env file (git-ignored; `make` writes one with a generated SECRET_KEY) fills in what
# the environment leaves unset; the environment always wins. ENV_FILE names another file, or
# /dev/null for none, as `make test` does to keep the suite independent of local settings.
_ENV_FILE = Path(os.environ.get("ENV_FILE") or BASE_DIR / ".env")
if _ENV_FILE.is_file():
    environ.Env.read_env(_ENV_FILE)

DEBUG = env("DEBUG", _bool, False)

SECRET_KEY = env("SECRET_KEY", _not_placeholder, "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "The environment variable SECRET_KEY is not set. It is required when DEBUG is off: "
            "set it to a long random string (see .env.example; `make run` and `make test` write "
            "one into .env), or set DEBUG=true for development."
        )
    SECRET_KEY = "insecure-development-key-only-used-when-DEBUG-is-on"  # noqa: S105

ALLOWED_HOSTS = env("ALLOWED_HOSTS", _list, ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env("CSRF_TRUSTED_ORIGINS", _list, [])

# Behind HTTPS, cookies must never travel in clear.
SECURE_COOKIES = env("SECURE_COOKIES", _bool, False)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# A signed-in session ends after TMS_SESSION_IDLE_TIMEOUT seconds without a request of its user
# (a live region's refresh is not one), and TMS_SESSION_LIFETIME seconds after sign-in in any
# case (tmsdash.security.SessionTimeoutMiddleware).
TMS_SESSION_LIFETIME = env("TMS_SESSION_LIFETIME", _positive_int, 12 * 3600)
TMS_SESSION_IDLE_TIMEOUT = env(
    "TMS_SESSION_IDLE_TIMEOUT",
    _at_most(TMS_SESSION_LIFETIME, "TMS_SESSION_LIFETIME"),
    min(30 * 60, TMS_SESSION_LIFETIME),
)
SESSION_COOKIE_AGE = TMS_SESSION_LIFETIME
# HTTPS settings for production behind TLS (see docs/security.md); all off by
# default so that `make run` works on http://127.0.0.1.
SECURE_SSL_REDIRECT = env("SECURE_SSL_REDIRECT", _bool, False)
SECURE_HSTS_SECONDS = env("SECURE_HSTS_SECONDS", _seconds, 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env("SECURE_HSTS_INCLUDE_SUBDOMAINS", _bool, False)
SECURE_HSTS_PRELOAD = env("SECURE_HSTS_PRELOAD", _bool, False)
# Behind a proxy that terminates TLS and sets X-Forwarded-Proto: https.
if env("SECURE_PROXY_SSL_HEADER", _bool, False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# No inline script or style anywhere, the admin's pages included: what an injected tag could
# run or restyle is refused by the browser.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tasks",
    "django_tasks_db",
    "jobs",
    "audit",
    "legacy",
    "ops",
    "axes",
    "django_htmx",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
    "notifications",
    "schedules",
    "accounts",
    # Connects what the project's own modules need at start (tmsdash.apps).
    "tmsdash",
]
# The fake cluster, demo seeding and the all-in-one runner: for development, demos and tests,
# never in production, where `seed_demo` would create a superuser with a printed password.
TMS_DEVTOOLS = env("TMS_DEVTOOLS", _bool, DEBUG)
if TMS_DEVTOOLS:
    INSTALLED_APPS.append("devtools")

MIDDLEWARE = [
    # First, so that every request is logged, static files and refusals included.
    "tmsdash.middleware.RequestLogMiddleware",
    "tmsdash.security.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files, compressed and with hashed names, before anything else reads the request.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tmsdash.middleware.RefuseNulMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "tmsdash.middleware.SignedOutHtmxMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After the user, htmx and messages are known: it signs out and says why.
    "tmsdash.security.SessionTimeoutMiddleware",
    # After the idle timeout: a session made through the identity provider is renewed there.
    "tmsdash.security.ProviderSessionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: it turns a lock-out into the lock-out page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "tmsdash.urls"
# Hide tokens and passwords from error pages and reports with DEBUG on too.
DEFAULT_EXCEPTION_REPORTER_FILTER = "tmsdash.error_reports.AlwaysSafeExceptionReporterFilter"
WSGI_APPLICATION = "tmsdash.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env("DATABASE_URL", _database, {"ENGINE": "django.db.backends.sqlite3"}),
}
if _ENGINES[DATABASES["default"]["ENGINE"]] == "sqlite":
    DATABASES["default"]["NAME"] = DATABASES["default"].get("NAME") or str(VAR_DIR / "db.sqlite3")
    # Concurrent writers wait for each other instead of failing with "database is locked":
    # WAL lets readers and one writer work at once, IMMEDIATE takes the write lock when a
    # transaction begins (a deferred transaction that reads and then writes cannot wait for
    # it), and the busy timeout is how long a writer waits (then "database is locked": a web
    # request answers 503, a worker or housekeeping waits on, lib.outage).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env("TMS_SQLITE_BUSY_TIMEOUT", _positive_int, 30),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so that tests of concurrency use real locks and real connections.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
    VAR_DIR.mkdir(exist_ok=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-in throttling (django-axes): after TMS_SIGNIN_FAILURE_LIMIT failed sign-ins for one
# username from one address, that pair is refused for TMS_SIGNIN_COOLOFF seconds. Attempts are
# kept in the database, so every web process and host shares them. Password sign-in itself is
# accounts' backend: off for all but TMS_BREAK_GLASS_USERS while TMS_LOCAL_SIGNIN is false.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.backends.LocalPasswordBackend",
    # Sessions made through the identity provider (it checks no password).
    "accounts.provider_backend.ProviderBackend",
]
AXES_FAILURE_LIMIT = env("TMS_SIGNIN_FAILURE_LIMIT", _positive_int, 5)
AXES_COOLOFF_TIME = datetime.timedelta(seconds=env("TMS_SIGNIN_COOLOFF", _positive_int, 900))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# A refused attempt does not push the end of the lock-out further away.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "audit.services.client_ip"
AXES_USERNAME_CALLABLE = "audit.services.signin_username"
AXES_VERBOSE = False
# How many proxies in front of the dashboard append to X-Forwarded-For (0: none, the peer's
# address is the client's). Sign-in throttling and the audit trail read the client's address so.
TMS_TRUSTED_PROXIES = env("TMS_TRUSTED_PROXIES", _count, 0)
LOGIN_URL = "login"
LOGOUT_REDIRECT_URL = "login"

# Company sign-in through an OpenID provider (accounts.oidc; docs/sign-in.md): on when
# OIDC_ISSUER is set. Users are found by the provider's issuer and subject, their groups set
# from the provider's at every sign-in and renewal (OIDC_GROUP_MAP; the targets `staff` and
# `superuser` set those flags), and a session through the provider lasts at most
# OIDC_SESSION_MAX_AGE seconds, renewed every OIDC_RENEW_SECONDS while the provider agrees.
OIDC_ISSUER = env("OIDC_ISSUER", _issuer, "")
OIDC_ENABLED = bool(OIDC_ISSUER)
OIDC_CLIENT_ID = env("OIDC_CLIENT_ID", str, "")
OIDC_CLIENT_SECRET = env("OIDC_CLIENT_SECRET", str, "")
OIDC_PROVIDER_NAME = env("OIDC_PROVIDER_NAME", str, "single sign-on")
OIDC_SCOPES = env("OIDC_SCOPES", _list, ["openid", "email", "profile", "offline_access"])
OIDC_GROUPS_CLAIM = env("OIDC_GROUPS_CLAIM", str, "groups")
OIDC_GROUP_MAP = env("OIDC_GROUP_MAP", _group_map, {})
OIDC_USERNAME_CLAIM = env("OIDC_USERNAME_CLAIM", str, "preferred_username")
OIDC_EMAIL_CLAIM = env("OIDC_EMAIL_CLAIM", str, "email")
OIDC_SESSION_MAX_AGE = env("OIDC_SESSION_MAX_AGE", _positive_int, 8 * 3600)
OIDC_RENEW_SECONDS = env(
    "OIDC_RENEW_SECONDS", _at_most(OIDC_SESSION_MAX_AGE, "OIDC_SESSION_MAX_AGE"), 300
)
# Seconds each call to the provider (discovery, keys, tokens) may take.
OIDC_TIMEOUT = env("OIDC_TIMEOUT", _positive_int, 10)
if OIDC_ENABLED:
    # Signing out goes on to the provider's sign-out (a form's redirect, which form-action
    # governs).
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"].append(
        "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(OIDC_ISSUER))
    )
if OIDC_ENABLED and not (OIDC_CLIENT_ID and OIDC_CLIENT_SECRET and OIDC_GROUP_MAP):
    raise ImproperlyConfigured(
        "OIDC_ISSUER is set: OIDC_CLIENT_ID, OIDC_CLIENT_SECRET and OIDC_GROUP_MAP must be too "
        "(docs/sign-in.md)."
    )
# Password sign-in: off for everyone but the break-glass users once the provider signs people
# in. Each break-glass sign-in is audited and notified to the admins.
TMS_LOCAL_SIGNIN = env("TMS_LOCAL_SIGNIN", _bool, True)
TMS_BREAK_GLASS_USERS = env("TMS_BREAK_GLASS_USERS", _list, [])

LANGUAGE_CODE = "en-us"
# The admin shows times to the second with their zone (tmsdash/formats/en/formats.py).
FORMAT_MODULE_PATH = ["tmsdash.formats"]
TIME_ZONE = env("TIME_ZONE", _time_zone, "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Our own files, and htmx from npm (package.json; `make run` and `make test` install it).
STATICFILES_DIRS = [BASE_DIR / "static", ("vendor/htmx", BASE_DIR / "node_modules/htmx.org/dist")]
# `manage.py collectstatic` writes here (`make run` and `make test` do it); WhiteNoise serves
# it with far-future caching, since every name carries its content's hash.
STATIC_ROOT = env("STATIC_ROOT", Path, VAR_DIR / "static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# In development, edited files are served at once, without collectstatic.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
# Any queue name: a job's task is queued on its cluster's queue (jobs.lanes.lane_queue).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": []}}

# The dashboard's own settings.
# Hosts that a Cluster's base URL may name (empty: any host).
TMS_ALLOWED_CLUSTER_HOSTS = env("TMS_ALLOWED_CLUSTER_HOSTS", _list, [])
# Link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254) are never
# called unless this is on.
TMS_ALLOW_LINK_LOCAL_CLUSTERS = env("TMS_ALLOW_LINK_LOCAL_CLUSTERS", _bool, False)
TMS_CID_PATTERN = env("TMS_CID_PATTERN", _regex, r"^[A-Za-z0-9_-]{1,64}$")
TMS_MAX_CIDS = env("TMS_MAX_CIDS", _positive_int, 100_000)
# A typed submission of TMS_MAX_CIDS customer IDs of 64 characters must fit in a request: each
# with a separator a browser may send as up to 6 bytes ("%0D%0A"), plus the rest of the form.
# A larger request is refused before it is read (the 400 page says why).
DATA_UPLOAD_MAX_MEMORY_SIZE = TMS_MAX_CIDS * (64 + 6) + 1024 * 1024
# A started job with no result this long after its cluster's timeout is reaped as UNKNOWN.
TMS_REAP_GRACE = env("TMS_REAP_GRACE", _seconds, 60)
# A job that no worker started within this many seconds is reaped as FAILED.
TMS_QUEUE_EXPIRY = env("TMS_QUEUE_EXPIRY", _seconds, 600)
# How long an approval request waits for its decision, unless its rule says (at most 7 days).
TMS_APPROVAL_TTL = env("TMS_APPROVAL_TTL", _at_most(7 * 24 * 3600, "7 days"), 24 * 3600)
# How often housekeeping looks for the schedules' due occurrences (schedules.services.scheduler).
TMS_SCHEDULER_SECONDS = env("TMS_SCHEDULER_SECONDS", _positive_int, 5)
TMS_WORKER_CONCURRENCY = env("TMS_WORKER_CONCURRENCY", _positive_int, 4)
# The worker processes of a host's `run_worker` sharing those calls (see ops.worker).
TMS_WORKER_PROCESSES = env("TMS_WORKER_PROCESSES", _positive_int, 1)
# Personal API tokens (api.tokens): the default and longest lifetime in days, and whether a
# token may never expire (an admin's choice; off by default).
TMS_API_TOKEN_DAYS = env("TMS_API_TOKEN_DAYS", _positive_int, 90)
TMS_API_TOKEN_MAX_DAYS = env("TMS_API_TOKEN_MAX_DAYS", _positive_int, 365)
TMS_API_TOKEN_NEVER_EXPIRES = env("TMS_API_TOKEN_NEVER_EXPIRES", _bool, False)
# At most this many live (neither revoked nor expired) tokens per user: one per script or
# pipeline, with room to rotate them. Revoked and expired tokens stay listed, for their owners
# to see why a script stopped, this many days; then housekeeping removes them (audited).
TMS_API_TOKENS_PER_USER = env("TMS_API_TOKENS_PER_USER", _positive_int, 20)
TMS_API_TOKENS_KEEP_DAYS = env("TMS_API_TOKENS_KEEP_DAYS", _positive_int, 30)
# Retention (jobs.services.retention, ops.retention): housekeeping archives and purges, once a
# day, the jobs ended more than TMS_RETENTION_DAYS days ago, into a file in TMS_ARCHIVE_DIR;
# only when both are set (default: every job is kept forever).
TMS_RETENTION_DAYS = env("TMS_RETENTION_DAYS", _positive_int, None)
TMS_ARCHIVE_DIR = env("TMS_ARCHIVE_DIR", Path, None)
# The audit trail's own retention (audit.retention, ops.audit_retention): with TMS_ARCHIVE_DIR,
# housekeeping archives and purges, once a day, the audit entries written more than this many
# days ago (at least 7); unset (the default), the audit trail is kept forever.
TMS_AUDIT_RETENTION_DAYS = env("TMS_AUDIT_RETENTION_DAYS", _audit_retention_days, None)
# Per-token API rate limits, per minute, held by the database across processes and hosts.
TMS_API_SUBMITS_PER_MINUTE = env("TMS_API_SUBMITS_PER_MINUTE", _positive_int, 60)
TMS_API_READS_PER_MINUTE = env("TMS_API_READS_PER_MINUTE", _positive_int, 600)
# The JSON API (Django REST Framework): personal tokens only, JSON in and out, errors as
# problem details, an OpenAPI 3 description by drf-spectacular with its docs served from here.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.authentication.TokenScope"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttles.TokenRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.problems.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
# The OpenAPI description is the API's contract (api.schema adds what the views cannot say;
# tests/test_api_contract.py lints it and builds clients from it).
SPECTACULAR_SETTINGS = {
    "TITLE": "TMS Dashboard API",
    "DESCRIPTION": "Set Actions and job history for scripts and pipelines.",
    "VERSION": "1",
    "CONTACT": {"name": "The dashboard's administrators"},
    # The project is not published under a licence: the API is for the organisation's own use.
    "LICENSE": {"name": "Proprietary: internal use only"},
    # Relative: the paths are on the dashboard that serves this description, wherever it runs.
    "SERVERS": [{"url": "/", "description": "The dashboard serving this description."}],
    "TAGS": [
        {"name": "set-actions", "description": "Run Set Actions on a cluster."},
        {"name": "jobs", "description": "Jobs: read, wait for, retry and cancel them."},
        {"name": "batches", "description": "The jobs one submit was split into."},
        {"name": "customers", "description": "A customer's history."},
        {"name": "clusters", "description": "The clusters a Set Action may name."},
        {"name": "audit", "description": "The audit log."},
        {
            "name": "run-grants",
            "description": "Who may run which actions on which clusters (administrators).",
        },
        {"name": "approvals", "description": "Approve or deny what waits for approval."},
        {
            "name": "approval-rules",
            "description": "Which Set Actions wait for approval, and by whom (administrators).",
        },
        {
            "name": "change-freezes",
            "description": "When nothing is sent to a cluster, or to any (administrators).",
        },
        {
            "name": "maintenance-windows",
            "description": "When a cluster's jobs are sent (administrators).",
        },
        {
            "name": "schedules",
            "description": "Saved Set Actions, and the schedules that run them once or on a "
            "recurrence.",
        },
    ],
    # A job's status keeps its name beside an approval request's.
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "jobs.models.JobStatus",
        "ApprovalStatusEnum": "jobs.models.ApprovalRequest.Status",
        "MissingDstEnum": "schedules.models.Schedule.MissingDst",
        "MissedEnum": "schedules.models.Schedule.Missed",
        "OverlapEnum": "schedules.models.Schedule.Overlap",
        "OccurrenceStateEnum": "schedules.models.Occurrence.State",
    },
    # A nullable choice is one enum with null among its values, not oneOf [XEnum, NullEnum],
    # which generated clients (orval) cannot type; api.schema.enums writes it so.
    "ENUM_ADD_EXPLICIT_BLANK_NULL_CHOICE": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "api.schema.enums",
        "api.schema.valid_page_examples",
        "api.schema.empty_filters_allowed",
        "api.schema.bodies_required",
        "api.schema.no_nul_in_the_address",
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# The bearer token a Prometheus scraper sends to read /metrics (empty: /metrics is off).
TMS_METRICS_TOKEN = env("TMS_METRICS_TOKEN", _secret, "")
# The web server, gunicorn (tmsdash/gunicorn.py reads these): its address, its processes, and
# the threads of each, which is how many requests one process serves at once.
TMS_WEB_BIND = env("TMS_WEB_BIND", str, "127.0.0.1:8000")
TMS_WEB_PROCESSES = env("TMS_WEB_PROCESSES", _positive_int, 2)
TMS_WEB_THREADS = env("TMS_WEB_THREADS", _positive_int, 8)
# Long polls of the API (GET /jobs/{id}?wait=S, api.waits) each hold a thread: a web process
# admits this many of one token's, and this many in all, then answers 429. The latter defaults
# to a quarter of TMS_WEB_THREADS (at least 1) and may be at most TMS_WEB_THREADS - 1, so that
# most threads, at least one, stay free for the pages and /healthz (with one thread, that one).
TMS_API_WAITS_PER_TOKEN = env("TMS_API_WAITS_PER_TOKEN", _positive_int, 2)
TMS_API_WAITS_PER_PROCESS = env(
    "TMS_API_WAITS_PER_PROCESS",
    _at_most(max(TMS_WEB_THREADS - 1, 1), "TMS_WEB_THREADS - 1, at least 1"),
    max(TMS_WEB_THREADS // 4, 1),
)
# Encrypts operators' tokens while their jobs run. Derived from SECRET_KEY when unset, so
# rotating SECRET_KEY makes the tokens of jobs still queued unreadable (they then fail).
TMS_TOKEN_KEY = env(
    "TMS_TOKEN_KEY",
    _fernet_key,
    base64.urlsafe_b64encode(
        hashlib.sha256(f"tmsdash-token-key:{SECRET_KEY}".encode()).digest()
    ).decode(),
)

# Notifications (the notifications app). Links in notices start with TMS_PUBLIC_URL, the
# dashboard's address as its users reach it.
TMS_PUBLIC_URL = env("TMS_PUBLIC_URL", _url, f"http://{TMS_WEB_BIND}")
# E-mail goes out through the SMTP server EMAIL_URL names (django-environ's form,
# smtp://user:password@host:587/?tls=True); unset, no mail is sent. EMAIL_URL itself is not
# kept as a setting: it holds a password.
_MAIL = env("EMAIL_URL", _email, {})
TMS_MAIL_ENABLED = bool(_MAIL)
globals().update(_MAIL)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", str, "tmsdash@localhost")
# More than this many e-mail notices to one person within TMS_NOTIFY_DIGEST_WINDOW seconds:
# the rest of them go out together, as one digest, at the end of the window.
TMS_NOTIFY_DIGEST_AFTER = env("TMS_NOTIFY_DIGEST_AFTER", _positive_int, 10)
TMS_NOTIFY_DIGEST_WINDOW = env("TMS_NOTIFY_DIGEST_WINDOW", _positive_int, 300)
# A notice not acknowledged is tried again after TMS_NOTIFY_RETRY_FIRST seconds, then after
# twice as long each time (at most an hour), until TMS_NOTIFY_RETRY_FOR seconds after the event.
TMS_NOTIFY_RETRY_FIRST = env("TMS_NOTIFY_RETRY_FIRST", _positive_int, 30)
TMS_NOTIFY_RETRY_FOR = env("TMS_NOTIFY_RETRY_FOR", _positive_int, 24 * 3600)
# Hosts that a webhook endpoint's URL may name (empty: any host). Link-local and metadata
# addresses are refused as for clusters (TMS_ALLOW_LINK_LOCAL_CLUSTERS).
TMS_ALLOWED_WEBHOOK_HOSTS = env("TMS_ALLOWED_WEBHOOK_HOSTS", _list, [])

LOG_LEVEL = env("LOG_LEVEL", _log_level, "INFO")
# text: one readable line per event; json: one JSON object per line, for a log shipper.
LOG_FORMAT = env("LOG_FORMAT", _choice("text", "json"), "text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # Both escape what a message carries from outside (tmsdash.logs).
        "text": {"()": "tmsdash.logs.TextFormatter"},
        "json": {"()": "tmsdash.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        **{
            name: {"level": LOG_LEVEL}
            for name in ("jobs", "audit", "ops", "notifications", "devtools", "tmsdash", "lib")
        },
        # A 4xx is the request log's one line (tmsdash.middleware), not also Django's warning
        # with a traceback; errors (5xx) are still logged with theirs.
        "django.request": {"level": "ERROR"},
        # The web server's own lines (tmsdash/gunicorn.py): gunicorn stops them propagating.
        "gunicorn.error": {"level": LOG_LEVEL, "handlers": ["console"], "propagate": False},
    },
}
