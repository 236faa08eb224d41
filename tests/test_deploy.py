"""deploy/: the systemd units and the shared settings name what exists; the units restart as
`make run` does."""

from __future__ import annotations

import configparser
import re

import pytest
from django.core.management import get_commands

from devtools.supervision import RestartPolicy
from tests.fresh_settings import ROOT

DEPLOY = ROOT / "deploy"
UNITS = sorted(DEPLOY.glob("*.service"))


def documented_variables() -> set[str]:
    return set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))


def test_the_shared_settings_use_only_documented_variables():
    names = re.findall(r"^([A-Z_]+)=", (DEPLOY / "tmsdash.env").read_text(), re.MULTILINE)
    assert "DATABASE_URL" in names
    assert set(names) <= documented_variables()


@pytest.mark.parametrize("unit", UNITS, ids=lambda path: path.name)
def test_each_unit_runs_a_real_command_with_the_shared_settings(unit):
    text = unit.read_text()
    assert "EnvironmentFile=/etc/tmsdash/tmsdash.env" in text
    [command] = re.findall(r"^ExecStart=(.*)$", text, re.MULTILINE)
    if "manage.py" in command:
        assert command.split("manage.py ")[1].split()[0] in get_commands()
    else:
        assert command.endswith("gunicorn --config python:tmsdash.gunicorn")
    assert "KillSignal=SIGTERM" in text


def test_units_for_the_web_server_the_workers_and_housekeeping():
    assert [unit.name for unit in UNITS] == [
        "tmsdash-housekeeping.service",
        "tmsdash-web.service",
        "tmsdash-worker.service",
    ]


@pytest.mark.parametrize("unit", UNITS, ids=lambda path: path.name)
def test_each_unit_restarts_as_the_all_in_one_runner_does(unit):
    config = configparser.ConfigParser(interpolation=None, strict=False)
    config.optionxform = str
    config.read_string(unit.read_text())
    service, start_limit = config["Service"], config["Unit"]
    policy = RestartPolicy()
    assert service["Restart"] == "always"
    assert float(service["RestartSec"]) == policy.delay
    assert float(service["RestartMaxDelaySec"]) == policy.max_delay
    assert int(start_limit["StartLimitBurst"]) == policy.burst
    # systemd refuses the start after `burst` of them within the interval: it must hold the
    # waits between those starts and `burst` runs as short as the runner gives up on.
    waits = sum(min(policy.delay * 2**n, policy.max_delay) for n in range(policy.burst))
    shortest = waits + policy.burst * policy.start_limit_seconds
    assert int(start_limit["StartLimitIntervalSec"]) >= shortest
