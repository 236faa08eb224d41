"""`manage.py housekeeping`: one pass with --once, for cron; else a pass every --interval
seconds until SIGTERM, which it obeys without waiting for the next pass."""

from __future__ import annotations

import datetime as dt
import io
import os
import signal
import subprocess
import sys
import time

import pytest
from django.core.management import call_command
from django.utils import timezone

from jobs.models import Job
from jobs.services import job_submit
from tests.fresh_settings import ROOT
from tests.helpers import TOKEN, database_url


def test_once_makes_one_pass_and_says_what_it_changed(operator, cluster, settings):
    settings.TMS_QUEUE_EXPIRY = 60
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="C1", token=TOKEN)
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))
    out = io.StringIO()
    call_command("housekeeping", "--once", stdout=out)
    assert "1 not started" in out.getvalue()
    assert Job.objects.get(pk=job.pk).status == "FAILED"
    quiet = io.StringIO()
    call_command("housekeeping", "--once", stdout=quiet)
    assert quiet.getvalue() == ""


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_sigterm_stops_it_between_passes_at_once():
    process = subprocess.Popen(
        [sys.executable, "manage.py", "housekeeping", "--interval", "600", "--verbosity", "2"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url()},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Its first pass is done: it says so at verbosity 2, after its log lines (the hourly
        # check of the audit chain logs the head it reached).
        lines = iter(process.stdout.readline, "")
        assert any(line.startswith("housekeeping: 0 job(s) UNKNOWN") for line in lines)
        stopped = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert time.monotonic() - stopped < 10
