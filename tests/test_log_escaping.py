"""The text log cannot be forged: what a request, a user or a cluster sends is written escaped,
on its record's one line, whatever control characters it holds."""

from __future__ import annotations

import http.client
import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from model_bakery import baker

from jobs.models import Cluster
from jobs.services import job_run, job_submit
from tests.helpers import TOKEN, database_url
from tests.live_web import HTTP_SECONDS, web_server
from tests.servers import LoopbackServer, answer
from tmsdash.logs import TextFormatter, escape

# A request path forging a record of its own, with a carriage return, terminal escapes (red
# text, cursor up, clear the line), DEL, a Unicode line separator, NEL and NUL; percent-encoded
# as it travels, and as the text log writes it.
FORGED = "\n2026-12-06 11:00:00,000 INFO tmsdash.requests GET /admin/ 200 1.0ms 10.0.0.1"
ESCAPED = (
    "/jobs/x\\n2026-12-06 11:00:00,000 INFO tmsdash.requests GET /admin/ 200 1.0ms 10.0.0.1"
    "\\r\\x1b[31m\\x1b[1A\\x1b[2K\\x7f\\u2028\\x85\\x00end"
)
PERCENT_ENCODED = (
    "/jobs/x%0A2026-12-06%2011:00:00,000%20INFO%20tmsdash.requests%20GET%20/admin/%20200%20"
    "1.0ms%2010.0.0.1%0D%1B[31m%1B[1A%1B[2K%7F%E2%80%A8%C2%85%00end"
)
RECORD_START = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")


def unprintable(text: str) -> list[str]:
    """The characters of `text` that no log line may hold: any unprintable but line ends."""
    return [c for c in text if c != "\n" and not c.isprintable()]


def request_line(path: str) -> re.Pattern:
    return re.compile(rf"(?:INFO|WARNING) tmsdash\.requests GET {re.escape(path)} \d{{3}} ")


@pytest.fixture
def text_log() -> Iterator[io.StringIO]:
    """The records of every logger, as the configured LOG_FORMAT=text console writes them."""
    [console] = [h for h in logging.getLogger().handlers if h.name == "console"]
    assert isinstance(console.formatter, TextFormatter)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(console.formatter)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("a\nb", "a\\nb"),
        ("a\rb", "a\\rb"),
        ("a\tb", "a\\tb"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("nul\x00", "nul\\x00"),
        ("del\x7f", "del\\x7f"),
        ("c1\x85\x9b", "c1\\x85\\x9b"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("rtl\u202eoverride\u2066", "rtl\\u202eoverride\\u2066"),
        ("no\u00a0break", "no\\xa0break"),
        ("lone \udc80 surrogate", "lone \\udc80 surrogate"),
        ("a literal \\n", "a literal \\\\n"),
        ("café 東京 Ωmega 🚀", "café 東京 Ωmega 🚀"),
        ("plain ASCII, as it is", "plain ASCII, as it is"),
    ],
)
def test_escape_writes_every_unprintable_character_as_an_escape(value, written):
    assert escape(value) == written


def test_a_forged_path_stays_on_its_request_s_line(client, text_log):
    # Sent percent-encoded, as a client must: the test client, as urllib, drops a raw \n.
    client.get(PERCENT_ENCODED.replace("%00", ""))
    client.get("/jobs/café-東京")
    lines = text_log.getvalue().splitlines()
    requests = [line for line in lines if " tmsdash.requests " in line]
    assert len(requests) == 2, lines
    assert request_line(ESCAPED.replace("\\x00", "")).search(requests[0])
    assert request_line("/jobs/café-東京").search(requests[1])
    # One record, one line: nothing it carried starts a line of its own or hides in one.
    assert all(RECORD_START.match(line) for line in lines)
    assert unprintable(text_log.getvalue()) == []


def test_a_nul_in_the_path_is_refused_and_logged_escaped(client, text_log):
    assert client.get(PERCENT_ENCODED).status_code == 400
    [request] = [line for line in text_log.getvalue().splitlines() if "tmsdash.requests" in line]
    assert request_line(ESCAPED).search(request)
    assert unprintable(text_log.getvalue()) == []


def test_a_traceback_keeps_its_lines_each_escaped_and_indented(text_log):
    logger = logging.getLogger("tmsdash.test")
    try:
        raise ValueError(f"cluster said: {FORGED}\x1b[2J")
    except ValueError:
        logger.exception("job %s failed: %s", "j1", f"answer{FORGED}")
    first, *rest = text_log.getvalue().rstrip("\n").split("\n")
    assert first.endswith(f"ERROR tmsdash.test job j1 failed: answer{escape(FORGED)}")
    assert rest[0] == "    Traceback (most recent call last):"
    assert rest[-2:] == [
        "    ValueError: cluster said: ",
        "    2026-12-06 11:00:00,000 INFO tmsdash.requests GET /admin/ 200 1.0ms 10.0.0.1\\x1b[2J",
    ]
    assert all(line.startswith("    ") for line in rest)
    assert unprintable(text_log.getvalue()) == []


def test_a_cluster_s_message_stays_on_its_job_s_line(operator, text_log):
    """A cluster answers a Set Action with a message forging a record and clearing the
    screen, and its name holds a line end: the job's lines carry neither as it was sent."""
    message = f"refused{FORGED}\r\x1b[2J\x1b[H\x00 für 東京"
    with LoopbackServer(answer(200, {"success": False, "message": message})) as server:
        cluster = baker.make(Cluster, name="hostile\n", base_url=server.url, timeout_seconds=5)
        [job] = job_submit(user=operator, action=1, cluster=cluster, cids="C1", token=TOKEN)
        job_run(job_id=job.pk)
    lines = text_log.getvalue().splitlines()
    assert all(RECORD_START.match(line) for line in lines), lines
    ended = [line for line in lines if f"job {job.pk} ended FAILED" in line]
    assert len(ended) == 1, lines
    # jobs.upstream keeps a cluster's text to one line of its own accord; either way none of
    # it reaches the log as a control character.
    assert "ended FAILED: refused" in ended[0] and ended[0].endswith("für 東京")
    submitted = [line for line in lines if f"job {job.pk} submitted" in line]
    assert "on hostile\\n," in submitted[0]
    assert unprintable(text_log.getvalue()) == []


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_web_server_s_log_has_one_escaped_line_per_request(tmp_path: Path):
    """gunicorn as in production, sent the raw bytes a scanner sends: its log file."""
    log = tmp_path / "web.log"
    with web_server(database_url(), log, LOG_FORMAT="text", LOG_LEVEL="INFO") as url:
        address = urlsplit(url)
        for path in (PERCENT_ENCODED, "/jobs/caf%C3%A9"):
            connection = http.client.HTTPConnection(
                address.hostname, address.port, timeout=HTTP_SECONDS
            )
            connection.putrequest("GET", path, skip_accept_encoding=True)
            connection.endheaders()
            status = connection.getresponse().status
            connection.close()
            assert status in (400, 302, 404)
    written = log.read_bytes().decode()
    requests = [line for line in written.splitlines() if " tmsdash.requests GET /jobs" in line]
    assert request_line(ESCAPED).search(requests[0])
    assert request_line("/jobs/café").search(requests[1])
    assert all(
        RECORD_START.match(line) or line.startswith("    ") for line in written.splitlines()
    ), written
    assert unprintable(written) == []
