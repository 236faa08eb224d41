from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.db import connections
from playwright.sync_api import Browser, Page, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from jobs.models import Cluster
from tests.e2e import PASSWORD, RESULTS, ROOT
from tests.helpers import database_url

# Playwright cannot download its own browser on these machines; Debian's Chromium it is.
# TEST_CHROMIUM names another one (the tests of the missing-browser report name none).
CHROMIUM = Path(os.environ.get("TEST_CHROMIUM", "/usr/bin/chromium"))
INSTALL_CHROMIUM = "apt-get install chromium"
MISSING_CHROMIUM = f"browser tests need Debian's Chromium at {CHROMIUM} ({INSTALL_CHROMIUM})"
# Without the background-networking flags Chromium calls home at start-up, and this machine's
# closed network refuses those connections in ways that slow or break the launch.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1200, "height": 800}
WORKER_STOP_SECONDS = 10
# Pages answer within a second here; the margin is for a loaded machine, not for slowness.
expect.set_options(timeout=10_000)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without Chromium the browser tests are skipped before anything is set up for them (no
    test database, no live server), except in CI, where the browser fixture fails them."""
    if CHROMIUM.exists() or os.environ.get("CI") == "true":
        return
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.skip(reason=MISSING_CHROMIUM))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> Iterator[None]:
    """Says how many browser tests did not run for want of Chromium, and how to install it, as
    the very last line: after pytest's own summary, which a skip among hundreds of passes hides
    in. The outermost wrapper's code after `yield` runs after the terminal reporter's, which
    writes that summary (pytest_terminal_summary comes before its closing line)."""
    result = yield
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        missed = sum(
            MISSING_CHROMIUM in str(report.longrepr) for report in reporter.stats.get("skipped", [])
        )
        if missed:
            reporter.write_line(
                f"{missed} browser test(s) did not run: no Chromium at {CHROMIUM}. "
                f"Install it with: {INSTALL_CHROMIUM}",
                yellow=True,
                bold=True,
            )
    return result


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    """pytest-django's live server, with static files served as in production: by the app's
    WhiteNoise middleware from the collected, hashed files (pytest-django's own handler looks
    files up by their source names, and knows no hashed ones)."""
    server = LiveServer("localhost", start=False)
    server.thread.static_handler = lambda application: application
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless Chromium for the package's tests. Playwright gives each launch a fresh
    user-data directory and each context fresh cookies and storage."""
    # Reached without Chromium only in CI (elsewhere the tests were skipped when collected),
    # which installs it: there a missing browser is a broken set-up, not a skip.
    if not CHROMIUM.exists():
        pytest.fail(MISSING_CHROMIUM, pytrace=False)
    # Playwright's sync API runs an event loop in this thread, suspended while the test runs.
    # Django then takes the thread for async code: it refuses database calls, and gives the
    # thread new connections, which lack the test database's serialized contents that
    # serialized rollback restores. Neither applies: the loop only drives the browser. So the
    # calls are allowed and the thread keeps its own connections.
    own_connections = {alias: connections[alias] for alias in connections}
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        for alias, connection in own_connections.items():
            connections[alias] = connection
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser: Browser, live_server) -> Iterator[Callable[[], Page]]:
    """Opens pages on the live server, each in a browser context of its own (its own user)."""
    contexts = []

    def open_page() -> Page:
        context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(open_page, request) -> Iterator[Page]:
    """A page on the live server; its final state is saved as test-results/e2e/<test>.png."""
    page = open_page()
    yield page
    RESULTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=RESULTS / f"{request.node.name}.png", full_page=True)


@pytest.fixture
def cluster(transactional_db, fake_cluster) -> Cluster:
    return Cluster.objects.create(
        name="eu1", base_url=fake_cluster.url, timeout_seconds=10, max_cids_per_request=500
    )


def _user(username: str, group: str, *, is_staff: bool = False) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=is_staff)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def operator(transactional_db) -> User:
    return _user("operator", "Operators")


@pytest.fixture
def other_operator(transactional_db) -> User:
    return _user("operator2", "Operators")


@pytest.fixture
def approver(transactional_db) -> User:
    return _user("approver", "Approvers")


@pytest.fixture
def auditor(transactional_db) -> User:
    return _user("auditor", "Auditors", is_staff=True)


@pytest.fixture
def start_worker(transactional_db, live_server, request) -> Iterator[Callable[[], None]]:
    """Starts a real `manage.py run_worker` on the test database; stops it after the test.

    Its output goes to test-results/e2e/<test>.worker.log.
    """
    processes: list[subprocess.Popen] = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = (RESULTS / f"{request.node.name}.worker.log").open("w")
    # The worker has no event loop: it runs as in production, without the test's exemption.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env |= {"DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "tmsdash.settings"}
    command = [sys.executable, "manage.py", "run_worker"]
    command += ["--interval", "0.05"]

    def start() -> None:
        processes.append(
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        )

    yield start
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=WORKER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log.close()


@pytest.fixture
def worker(start_worker) -> None:
    """A real worker, running from the start of the test."""
    start_worker()
