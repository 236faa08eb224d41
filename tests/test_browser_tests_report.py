"""Without Chromium the browser tests cannot run; `make test` then ends with a line saying how
many did not and the command that installs it, after pytest's summary, where it is seen."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.e2e import ROOT

NO_CHROMIUM = "/nonexistent/chromium"
# One browser test, skipped when collected: no test database or live server is set up, so this
# run leaves alone the run it is part of.
PYTEST = [sys.executable, "-m", "pytest", "tests/e2e", "-k", "test_the_docs_show_the_api"]


def test_without_chromium_the_last_line_counts_the_browser_tests_and_says_how_to_install_it():
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"TEST_CHROMIUM": NO_CHROMIUM}
    result = subprocess.run(
        [*PYTEST, "-p", "no:cacheprovider", "--color=no"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    *_, summary, last = result.stdout.splitlines()
    assert summary.startswith("=") and " 1 skipped" in summary
    assert last == (
        f"1 browser test(s) did not run: no Chromium at {NO_CHROMIUM}. "
        "Install it with: apt-get install chromium"
    )
