"""The fake cluster: the contract it speaks, its counts, its loopback-only rule and its command."""

from __future__ import annotations

import http.client
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from devtools.fake_cluster import FakeCluster, loopback_host
from jobs.upstream import call_set_action
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "tok-77c1e0-SECRET"
VALID = {"job_id": "job-1", "action": 1, "action_name": "Trans-Begin", "cids": ["C1"]}


def send(
    fake: FakeCluster,
    method: str = "POST",
    path: str = "/api/set_action",
    body: object = VALID,
    headers: dict[str, str] | None = None,
) -> tuple[int, object]:
    """One raw request to the fake; the answer's status and decoded JSON body."""
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    sent.update(headers or {})
    try:
        connection.request(method, path, body=data if method == "POST" else None, headers=sent)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def call(fake: FakeCluster, job_id: str, cids: list[str], **overrides):
    arguments = {
        "base_url": fake.url,
        "action_path": "/api/set_action",
        "job_id": job_id,
        "action": 3,
        "action_name": "T-Enable",
        "cids": cids,
        "token": TOKEN,
        "timeout_seconds": 2,
        "verify_tls": True,
    }
    arguments.update(overrides)
    return call_set_action(**arguments)


@pytest.fixture
def fake():
    with FakeCluster(slow_seconds=3) as server:
        yield server


def test_valid_request_succeeds_for_every_customer(fake):
    status, body = send(fake, body={**VALID, "cids": ["C1", "C2"]})
    assert status == 200
    assert body == {
        "success": True,
        "message": "Applied Trans-Begin to 2 customer(s)",
        "results": [
            {"cid": "C1", "success": True, "message": "ok"},
            {"cid": "C2", "success": True, "message": "ok"},
        ],
    }


def test_counts_requests_per_job_id_in_process_and_over_http(fake):
    call(fake, "job-a", ["C1"])
    call(fake, "job-a", ["C1"])
    call(fake, "job-b", ["C1"], token="bad-token")
    assert fake.count("job-a") == 2
    assert fake.count("job-b") == 1
    assert fake.count("job-never") == 0
    assert send(fake, "GET", "/_counts") == (200, {"job-a": 2, "job-b": 1})
    assert send(fake, "GET", "/_counts/job-a") == (200, {"job_id": "job-a", "count": 2})
    assert send(fake, "GET", "/_counts/job-never") == (200, {"job_id": "job-never", "count": 0})


def test_counts_use_the_idempotency_key_else_the_body_job_id(fake):
    send(fake, body={**VALID, "job_id": "from-body"})
    send(fake, body={**VALID, "job_id": "from-body"}, headers={"Idempotency-Key": "from-body"})
    send(fake, body={**VALID, "job_id": "x"}, headers={"Idempotency-Key": "from-header"})
    assert fake.counts() == {"from-body": 2, "from-header": 1}


def test_counts_cannot_be_changed_over_http(fake):
    call(fake, "job-a", ["C1"])
    status, _ = send(fake, "POST", "/_counts", body={"job-a": 0})
    assert status == 405
    assert fake.counts() == {"job-a": 1}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/api/other", 404),
        ("GET", "/", 404),
        ("POST", "/api/set_action/extra", 404),
        ("GET", "/api/set_action", 405),
    ],
)
def test_other_paths_and_methods_get_json_errors(fake, method, path, status):
    answer_status, body = send(fake, method, path)
    assert answer_status == status
    assert body["success"] is False
    assert fake.counts() == {}


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        ("Bearer bad-token", "Invalid token"),
        (None, "Missing or malformed Authorization header"),
        ("Basic dXNlcjpwdw==", "Missing or malformed Authorization header"),
        ("Bearer ", "Missing or malformed Authorization header"),
        (TOKEN, "Missing or malformed Authorization header"),
    ],
)
def test_refused_or_missing_token_gets_401(fake, authorization, message):
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    connection.request("POST", "/api/set_action", body=json.dumps(VALID), headers=headers)
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())) == (
        401,
        {"success": False, "message": message},
    )
    connection.close()


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (b"{not json", {}, "The body must be a JSON object"),
        ([VALID], {}, "The body must be a JSON object"),
        ({**VALID, "job_id": ""}, {}, "job_id must be a non-empty string"),
        ({**VALID, "job_id": None}, {}, "job_id must be a non-empty string"),
        ({**VALID, "action": 0}, {}, "action must be a whole number from 1 to 5"),
        ({**VALID, "action": 6}, {}, "action must be a whole number from 1 to 5"),
        ({**VALID, "action": "1"}, {}, "action must be a whole number from 1 to 5"),
        ({**VALID, "action": True}, {}, "action must be a whole number from 1 to 5"),
        ({**VALID, "action_name": None}, {}, "action_name must be a string"),
        ({**VALID, "cids": "C1"}, {}, "cids must be a non-empty list"),
        ({**VALID, "cids": []}, {}, "cids must be a non-empty list"),
        ({**VALID, "cids": ["C1", ""]}, {}, "every cid must be a non-empty string"),
        ({**VALID, "cids": ["C1", 2]}, {}, "every cid must be a non-empty string"),
        (VALID, {"Content-Type": "text/plain"}, "Content-Type must be application/json"),
        (VALID, {"Idempotency-Key": "other"}, "The Idempotency-Key header must equal job_id"),
    ],
)  # fmt: skip
def test_invalid_request_gets_400_with_the_reason(fake, body, headers, message):
    assert send(fake, body=body, headers=headers) == (400, {"success": False, "message": message})


def test_every_action_code_from_1_to_5_is_accepted(fake):
    for action in range(1, 6):
        assert send(fake, body={**VALID, "action": action})[0] == 200


def test_slow_customer_is_answered_after_the_delay():
    with FakeCluster(slow_seconds=0.3) as fake:
        started = time.monotonic()
        result = call(fake, "job-slow", ["C1", "SLOW2"], timeout_seconds=5)
        elapsed = time.monotonic() - started
    assert result.success
    assert elapsed >= 0.3


def test_stop_ends_a_slow_answer_early():
    fake = FakeCluster(slow_seconds=60).start()
    outcome = {}
    caller = threading.Thread(
        target=lambda: outcome.update(result=call(fake, "job-s", ["SLOW1"], timeout_seconds=30))
    )
    caller.start()
    deadline = time.monotonic() + 10
    while fake.count("job-s") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.count("job-s") == 1
    started = time.monotonic()
    fake.stop()
    caller.join(timeout=10)
    assert not caller.is_alive()
    assert time.monotonic() - started < 10
    assert outcome["result"].error_message.startswith("Connection failed: ")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", fake.port), timeout=5)


def test_each_failure_mode_is_produced_on_demand(fake):
    outcomes = {
        cid: call(fake, f"job-{cid}", ["C1", cid], timeout_seconds=1)
        for cid in ("E500x", "REJECTx", "HTMLx", "PARTIALx", "REDIRECTx", "HUGEx", "TRICKLEx")
    }
    assert {cid: (r.success, r.http_status) for cid, r in outcomes.items()} == {
        "E500x": (False, 500),
        "REJECTx": (False, 200),
        "HTMLx": (False, 200),
        "PARTIALx": (False, 200),
        "REDIRECTx": (False, 302),
        "HUGEx": (False, 200),
        "TRICKLEx": (False, None),
    }
    assert outcomes["REDIRECTx"].error_message == f"Unexpected redirect to {fake.url}/moved"
    assert [(c.cid, c.success) for c in outcomes["PARTIALx"].customer_results] == [
        ("C1", True),
        ("PARTIALx", False),
    ]


def test_first_customer_with_a_failure_prefix_decides_the_answer(fake):
    assert call(fake, "job-1", ["C1", "REJECT1", "E500"]).http_status == 200
    assert call(fake, "job-2", ["C1", "E500", "REJECT1"]).http_status == 500


def test_huge_answer_is_over_1_mib(fake):
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    connection.request("POST", "/api/set_action", json.dumps({**VALID, "cids": ["HUGE"]}), headers)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    assert response.status == 200
    assert response.getheader("Content-Length") is None
    assert len(body) > 1024 * 1024
    assert json.loads(body)["success"] is True


def test_fake_never_logs_the_token(fake, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="devtools")
    for cids in (["C1"], ["E500"], ["HUGE"], ["TRICKLE"]):
        call(fake, "job-log", cids, timeout_seconds=0.5)
    send(fake, body=b"{not json")
    assert any(r.name == "devtools.fake_cluster" for r in caplog.records)
    assert not [r for r in caplog.records if TOKEN in r.getMessage()]


# Loopback only.


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com", ""])  # noqa: S104
def test_non_loopback_host_is_refused(host):
    with pytest.raises(ValueError, match="loopback only"):
        FakeCluster(host=host)


def test_loopback_hosts_are_accepted():
    assert loopback_host("127.0.0.1") == "127.0.0.1"
    assert loopback_host("127.0.0.5") == "127.0.0.5"
    assert loopback_host("::1") == "::1"
    assert loopback_host("localhost") == "127.0.0.1"


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.1", "tms.example.net"])  # noqa: S104
def test_command_refuses_a_non_loopback_host(host):
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"--host.*loopback only"):
        call_command("fake_cluster", "--host", host, stdout=out)
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--port", "70000", "not a port number"),
        ("--port", "-1", "not a port number"),
        ("--slow-seconds", "soon", "not a number of seconds"),
        ("--slow-seconds", "-2", "not a number of seconds"),
    ],
)
def test_command_refuses_bad_port_and_delay(option, value, message):
    with pytest.raises(CommandError, match=message):
        call_command("fake_cluster", option, value, stdout=io.StringIO())


def test_command_reports_a_port_in_use():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CommandError, match=f"Cannot listen on http://127.0.0.1:{port}"):
            call_command("fake_cluster", "--port", str(port), stdout=io.StringIO())


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_command_serves_until_stopped_by_a_signal(stop_signal):
    env = {**os.environ, "SECRET_KEY": os.environ.get("SECRET_KEY") or "test-only"}
    process = subprocess.Popen(
        [sys.executable, "manage.py", "fake_cluster", "--port", "0", "--slow-seconds", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first_line = process.stdout.readline()
        assert first_line.startswith("Fake cluster listening on http://127.0.0.1:")
        port = int(first_line.split("http://127.0.0.1:")[1].split()[0])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/_counts")
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())) == (200, {})
        connection.close()
        process.send_signal(stop_signal)
        rest, errors = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, errors
    assert rest.strip().splitlines()[-1] == (
        "Fake cluster stopped after 0 Set Action request(s) for 0 job(s)."
    )
    assert "Traceback" not in errors


def test_keeps_the_most_set_actions_answered_at_once():
    with FakeCluster(answer_seconds=0.3) as fake:
        with ThreadPoolExecutor(3) as pool:
            statuses = [status for status, _ in pool.map(lambda _: send(fake), range(3))]
        assert statuses == [200, 200, 200]
        # A handler counts its call over once its answer is sent, a moment after the client
        # has read it.
        wait_until(lambda: fake.concurrency()["in_flight"] == 0, timeout=10)
        assert send(fake, "GET", "/_concurrency") == (200, {"in_flight": 0, "max_in_flight": 3})
        fake.reset_concurrency()
        send(fake)
        wait_until(lambda: fake.concurrency()["in_flight"] == 0, timeout=10)
        assert fake.concurrency() == {"in_flight": 0, "max_in_flight": 1}
