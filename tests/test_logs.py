"""Logs: one line per request and per job transition, JSON lines with LOG_FORMAT=json, never a
token."""

from __future__ import annotations

import json
import logging
import os
import sys

import pytest
from django.urls import reverse

from jobs.services import job_submit
from tests.helpers import TOKEN, confirm_review, worker
from tmsdash.logs import JsonFormatter


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_with_log_format_json_writes_json_lines_with_the_job_id(
    operator, cluster, fake_cluster, monkeypatch
):
    monkeypatch.setitem(os.environ, "LOG_FORMAT", "json")
    [job] = job_submit(user=operator, action=1, cluster=cluster, cids="C1", token=TOKEN)
    process = worker("--batch")
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output

    entries = [json.loads(line) for line in output.splitlines() if line.strip()]
    about_the_job = [e for e in entries if e.get("job_id") == str(job.pk)]
    messages = [e["message"] for e in about_the_job]
    assert any(m.startswith(f"job {job.pk} started") for m in messages)
    assert any(m.startswith(f"job {job.pk} ended SUCCESS") for m in messages)
    assert {"time", "level", "logger", "message"} <= set(about_the_job[0])
    assert TOKEN not in output


def test_each_request_is_one_line_without_its_query_string(client, operator, caplog):
    client.force_login(operator)
    with caplog.at_level(logging.INFO, logger="tmsdash.requests"):
        client.get(reverse("job_list") + "?q=private-search-term")
    [record] = [r for r in caplog.records if r.name == "tmsdash.requests"]
    assert (record.method, record.path, record.status) == ("GET", reverse("job_list"), 200)
    assert record.getMessage().startswith(f"GET {reverse('job_list')} 200 ")
    assert "private-search-term" not in record.getMessage()


def test_a_submit_logs_no_token(client, operator, cluster, caplog):
    client.force_login(operator)
    with caplog.at_level(logging.DEBUG):
        review = client.post(
            reverse("set_action"),
            {
                "action": "1",
                "cluster": cluster.pk,
                "cids": "C1",
                "token": TOKEN,
                "idempotency_key": "key-logs",
            },
        )
        confirm_review(client, review)
    assert any(r.getMessage().endswith("1 customer(s)") for r in caplog.records)
    assert TOKEN not in caplog.text


def test_the_json_format_carries_the_exception():
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("job",), None)
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed job"
    assert "ValueError: boom" in entry["exception"]
