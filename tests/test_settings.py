"""Start-up refuses missing or malformed configuration, naming the variable."""

from __future__ import annotations

import pytest

from tests.fresh_settings import run_python, start


def test_refuses_to_start_without_secret_key_when_debug_is_off():
    result = start()
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_debug_on_starts_without_secret_key():
    result = start(DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_starts_with_secret_key_and_debug_off():
    result = start(SECRET_KEY="k" * 50)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("DATABASE_URL", "mysql://u:hunter2@db/tms"),
        ("DATABASE_URL", "not a url"),
        ("TIME_ZONE", "Mars/Olympus"),
        ("LOG_LEVEL", "LOUD"),
        ("SECURE_COOKIES", "2"),
        ("TMS_CID_PATTERN", "[unclosed"),
        ("TMS_MAX_CIDS", "0"),
        ("TMS_MAX_CIDS", "lots"),
        ("TMS_REAP_GRACE", "-1"),
        ("TMS_QUEUE_EXPIRY", "10m"),
        ("TMS_APPROVAL_TTL", "0"),
        # More than 7 days.
        ("TMS_APPROVAL_TTL", "604801"),
        ("TMS_WORKER_CONCURRENCY", "0"),
        ("TMS_TOKEN_KEY", "too-short"),
        ("TMS_DEVTOOLS", "maybe"),
        ("SECURE_HSTS_SECONDS", "a year"),
        ("TMS_TRUSTED_PROXIES", "-1"),
        ("TMS_SIGNIN_FAILURE_LIMIT", "0"),
        ("LOG_FORMAT", "xml"),
        ("TMS_METRICS_TOKEN", "hunter2"),
        ("TMS_WEB_PROCESSES", "0"),
        ("TMS_WEB_THREADS", "many"),
        ("TMS_API_WAITS_PER_TOKEN", "0"),
        ("TMS_API_WAITS_PER_PROCESS", "0"),
        # As many waits as threads would leave none for the pages (TMS_WEB_THREADS is 8).
        ("TMS_API_WAITS_PER_PROCESS", "8"),
        ("TMS_PUBLIC_URL", "tms.example.net"),
        ("EMAIL_URL", "mysql://u:hunter2@mail.example:25"),
        ("EMAIL_URL", "smtp://u:hunter2@mail.example:587/?tls=True&ssl=True"),
        ("TMS_NOTIFY_DIGEST_AFTER", "0"),
        ("TMS_NOTIFY_RETRY_FOR", "a day"),
    ],
)
def test_malformed_value_stops_start_up_naming_the_variable(name, value):
    result = start(SECRET_KEY="k" * 50, **{name: value})
    assert result.returncode != 0
    assert f"The environment variable {name} is malformed" in result.stderr
    # Values can be secrets (a database password): never echoed.
    assert "hunter2" not in result.stderr


def test_postgres_url_selects_postgresql():
    result = start(
        "settings.DATABASES['default']['ENGINE']",
        SECRET_KEY="k" * 50,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres",
    )
    assert result.stdout.strip() == "django.db.backends.postgresql", result.stderr


def test_env_file_fills_in_what_the_environment_leaves_unset(tmp_path):
    env_file = tmp_path / "local.env"
    env_file.write_text(f"SECRET_KEY={'f' * 50}\nTIME_ZONE=Europe/Berlin\n")
    result = start("settings.SECRET_KEY, settings.TIME_ZONE", ENV_FILE=str(env_file))
    assert result.stdout.strip() == f"{'f' * 50} Europe/Berlin", result.stderr


def test_environment_wins_over_the_env_file(tmp_path):
    env_file = tmp_path / "local.env"
    env_file.write_text(f"SECRET_KEY={'f' * 50}\nTIME_ZONE=Europe/Berlin\n")
    result = start("settings.TIME_ZONE", ENV_FILE=str(env_file), TIME_ZONE="Asia/Tokyo")
    assert result.stdout.strip() == "Asia/Tokyo", result.stderr


def test_manage_py_reports_a_configuration_error_in_one_line():
    result = run_python(["manage.py", "makemigrations", "--check", "--dry-run"], {})
    assert result.returncode == 1
    assert result.stderr.startswith("tmsdash: The environment variable SECRET_KEY is not set.")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_devtools_follow_debug_unless_set():
    apps = "'devtools' in settings.INSTALLED_APPS"
    assert start(apps, SECRET_KEY="k").stdout.strip() == "False"
    assert start(apps, DEBUG="true").stdout.strip() == "True"
    assert start(apps, SECRET_KEY="k", TMS_DEVTOOLS="true").stdout.strip() == "True"
    assert start(apps, DEBUG="true", TMS_DEVTOOLS="false").stdout.strip() == "False"


def test_production_settings_have_no_demo_seeding():
    result = run_python(["manage.py", "seed_demo"], {"SECRET_KEY": "k"})
    assert result.returncode != 0
    assert "Unknown command: 'seed_demo'" in result.stderr


def test_a_negative_proxy_count_is_named_as_a_count():
    result = start(SECRET_KEY="k", TMS_TRUSTED_PROXIES="-1")
    assert "TMS_TRUSTED_PROXIES is malformed: expected a whole number, 0 or more" in result.stderr


def test_email_url_sets_the_smtp_server_and_is_not_kept_itself():
    result = start(
        "settings.TMS_MAIL_ENABLED, settings.EMAIL_HOST, settings.EMAIL_PORT, "
        "settings.EMAIL_HOST_USER, settings.EMAIL_USE_TLS, settings.EMAIL_USE_SSL, "
        "hasattr(settings, 'EMAIL_URL')",
        SECRET_KEY="k",
        EMAIL_URL="smtp://mailer:hunter2@mail.example:587/?tls=True",
    )
    assert result.stdout.split() == [
        "True",
        "mail.example",
        "587",
        "mailer",
        "True",
        "False",
        "False",
    ]
    assert start("settings.TMS_MAIL_ENABLED", SECRET_KEY="k").stdout.strip() == "False"


def test_links_in_notices_follow_the_web_servers_address_unless_set():
    assert start("settings.TMS_PUBLIC_URL", SECRET_KEY="k").stdout.strip() == (
        "http://127.0.0.1:8000"
    )
    assert (
        start(
            "settings.TMS_PUBLIC_URL", SECRET_KEY="k", TMS_PUBLIC_URL="https://tms.example.net/"
        ).stdout.strip()
        == "https://tms.example.net"
    )


@pytest.mark.parametrize(
    ("threads", "waits", "expected"),
    [("8", "", 2), ("12", "", 3), ("3", "", 1), ("1", "", 1), ("4", "3", 3), ("1", "1", 1)],
)
def test_waits_per_process_default_to_a_quarter_of_the_threads(threads, waits, expected):
    result = start(
        "settings.TMS_API_WAITS_PER_PROCESS",
        SECRET_KEY="k" * 50,
        TMS_WEB_THREADS=threads,
        TMS_API_WAITS_PER_PROCESS=waits,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(expected)]
