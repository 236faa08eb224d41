"""The cluster client against the fake cluster and small purpose-built servers, all on loopback."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import gzip
import ipaddress
import json
import logging
import re
import ssl
import threading
import time
import unicodedata
from urllib.parse import quote, unquote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import tmsdash
from devtools.fake_cluster import FakeCluster
from jobs import upstream, validators
from jobs.upstream import (
    MAX_ERROR_CHARS,
    MAX_RESPONSE_BYTES,
    CustomerResult,
    UpstreamResult,
    call_set_action,
)
from tests.servers import LoopbackServer, answer, refused_url, unconnectable_url

TOKEN = "tok-5f2a9c-SECRET"  # distinctive, so that any leak of it is found by a substring search
PATH = "/api/set_action"


def call(base_url: str, cids: list[str] | None = None, **overrides) -> UpstreamResult:
    arguments = {
        "base_url": base_url,
        "action_path": PATH,
        "job_id": "8d1f0c2e-0000-4000-8000-000000000001",
        "action": 2,
        "action_name": "PE-Enable",
        "cids": cids if cids is not None else ["C1", "C2"],
        "token": TOKEN,
        "timeout_seconds": 1,
        "verify_tls": True,
    }
    arguments.update(overrides)
    return call_set_action(**arguments)


def assert_failed(result: UpstreamResult, http_status: int | None, error: str) -> None:
    assert (result.success, result.http_status, result.error_message) == (
        False,
        http_status,
        error,
    )


@pytest.fixture
def fake():
    with FakeCluster(slow_seconds=3) as server:
        yield server


# Success.


def test_success_reply_gives_success_with_message_and_customer_results(fake):
    result = call(fake.url, ["C1", "C2"])
    assert result.success
    assert result.http_status == 200
    assert result.error_message == ""
    assert result.summary == "Applied PE-Enable to 2 customer(s)"
    assert result.customer_results == (
        CustomerResult(cid="C1", success=True, message="ok"),
        CustomerResult(cid="C2", success=True, message="ok"),
    )


def test_duration_is_measured_around_the_whole_call():
    def late(handler):
        time.sleep(0.2)  # the cluster's own time, which the duration must include
        answer(200, {"success": True})(handler)

    with LoopbackServer(late) as server:
        started = time.monotonic()
        result = call(server.url)
        elapsed_ms = (time.monotonic() - started) * 1000
    assert 200 <= result.duration_ms <= elapsed_ms


def test_success_without_message_summarises_the_customer_count():
    with LoopbackServer(answer(200, {"success": True})) as server:
        result = call(server.url, ["C1", "C2", "C3"])
    assert result.success
    assert result.summary == "Cluster accepted 3 customer(s)"
    assert result.customer_results == ()


@pytest.mark.parametrize("status", ["success", "Success", "SUCCESS"])
def test_status_success_in_any_case_is_success(status):
    with LoopbackServer(answer(201, {"status": status, "message": "Queued"})) as server:
        result = call(server.url)
    assert (result.success, result.http_status, result.summary) == (True, 201, "Queued")


def test_json_with_a_charset_and_a_vendor_json_type_is_understood():
    for content_type in ("application/json; charset=utf-8", "application/vnd.tms+json"):
        respond = answer(200, {"success": True}, content_type=content_type)
        with LoopbackServer(respond) as server:
            assert call(server.url).success


# Failure reported in a 2xx answer.


def test_success_false_fails_with_the_cluster_message(fake):
    result = call(fake.url, ["REJECT1", "C2"])
    assert_failed(result, 200, "PE-Enable rejected: a customer is not eligible")
    assert result.summary == ""


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"status": "error", "message": "Locked"}, "Locked"),
        ({"status": "FAILED", "error": "Quota exceeded"}, "Quota exceeded"),
        ({"success": False, "detail": "Not eligible"}, "Not eligible"),
        ({"success": False, "detail": [{"loc": "cids", "msg": "bad"}]}, None),
        # A failure marker wins over a success marker in the same answer.
        ({"success": True, "status": "error", "message": "Half done"}, "Half done"),
    ],
)
def test_failure_markers_fail_with_message_error_or_detail(body, error):
    with LoopbackServer(answer(200, body)) as server:
        result = call(server.url)
    expected = error if error is not None else json.dumps(body["detail"])
    assert_failed(result, 200, expected)


def test_success_false_without_a_message_says_so():
    with LoopbackServer(answer(202, {"success": False})) as server:
        result = call(server.url)
    assert_failed(result, 202, "Cluster reported a failure without a message (HTTP 202)")


# Unrecognised 2xx answers.


def test_html_answer_is_unrecognised_with_status_and_content_type(fake):
    result = call(fake.url, ["HTML1"])
    assert_failed(result, 200, "Unrecognised response from cluster (HTTP 200, text/html)")


UNRECOGNISED_JSON = "Unrecognised response from cluster (HTTP {}, application/json): {}"
NO_MARKER = UNRECOGNISED_JSON.format(200, "no success or status field")
NOT_AN_OBJECT = UNRECOGNISED_JSON.format(200, "not a JSON object")


@pytest.mark.parametrize(
    ("respond", "status", "error"),
    [
        (answer(200, {"accepted": 2}), 200, NO_MARKER),
        (answer(200, {"status": "pending"}), 200, NO_MARKER),
        (answer(200, {"success": "true"}), 200, NO_MARKER),
        (answer(200, "{not json"), 200, NOT_AN_OBJECT),
        (answer(200, [{"success": True}]), 200, NOT_AN_OBJECT),
        (answer(204), 204, UNRECOGNISED_JSON.format(204, "not a JSON object")),
        (
            answer(200, '{"success": true}', content_type="text/plain"),
            200,
            "Unrecognised response from cluster (HTTP 200, text/plain)",
        ),
    ],
)  # fmt: skip
def test_2xx_without_a_recognised_json_answer_fails(respond, status, error):
    with LoopbackServer(respond) as server:
        result = call(server.url)
    assert_failed(result, status, error)


def test_answer_without_content_type_is_named_as_such():
    def respond(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"{}")

    with LoopbackServer(respond) as server:
        result = call(server.url)
    assert_failed(result, 200, "Unrecognised response from cluster (HTTP 200, no content type)")


# Redirects.


def test_redirect_is_reported_and_not_followed():
    with (
        LoopbackServer(answer(200, {"success": True})) as target,
        FakeCluster(redirect_to=f"{target.url}{PATH}") as fake,
    ):
        result = call(fake.url, ["REDIRECT1"])
        assert target.received == []
    assert_failed(result, 302, f"Unexpected redirect to {target.url}{PATH}")
    assert fake.count("8d1f0c2e-0000-4000-8000-000000000001") == 1


@pytest.mark.parametrize("status", [301, 303, 307, 308])
def test_every_redirect_status_is_a_failure(status):
    respond = answer(status, headers={"Location": "/elsewhere"})
    with LoopbackServer(respond) as server:
        result = call(server.url)
        assert [r.path for r in server.received] == [PATH]
    assert_failed(result, status, "Unexpected redirect to /elsewhere")


def test_redirect_without_location_says_so():
    with LoopbackServer(answer(302)) as server:
        assert_failed(call(server.url), 302, "Unexpected redirect (HTTP 302) without a Location")


# 4xx and 5xx.


def test_refused_token_gives_401_with_the_cluster_message(fake):
    result = call(fake.url, token="bad-token")
    assert_failed(result, 401, "API returned status 401: Invalid token")


def test_server_error_gives_the_status_and_the_cluster_message(fake):
    result = call(fake.url, ["E500-1"])
    assert_failed(result, 500, "API returned status 500: Internal error while applying PE-Enable")


@pytest.mark.parametrize(
    ("respond", "status", "error"),
    [
        (answer(503, "", content_type="text/html"), 503, "Service Unavailable"),
        (answer(429, {"error": "Slow down"}), 429, "Slow down"),
        (answer(400, {"detail": "cids: required"}), 400, "cids: required"),
        (answer(403, "Forbidden here\n", content_type="text/plain"), 403, "Forbidden here"),
        (answer(401, "{broken", reason="Token Expired"), 401, "Token Expired"),
        (answer(404, {"message": ""}, reason="Nope"), 404, "Nope"),
    ],
)  # fmt: skip
def test_error_status_uses_the_body_message_else_the_reason_phrase(respond, status, error):
    with LoopbackServer(respond) as server:
        result = call(server.url)
    assert_failed(result, status, f"API returned status {status}: {error}")


def test_status_outside_100_to_599_is_reported_without_an_http_status():
    with LoopbackServer(answer(999, {"success": True}, reason="Odd")) as server:
        result = call(server.url)
    assert_failed(result, None, "Unrecognised HTTP status 999 from cluster")


# Timeouts: the deadline bounds the whole call.


def test_no_answer_within_the_timeout_is_a_timeout(fake):
    started = time.monotonic()
    result = call(fake.url, ["SLOW1"], timeout_seconds=1)
    elapsed = time.monotonic() - started
    assert_failed(result, None, "Request timeout after 1s")
    # The fake answers only after 3 s.
    assert elapsed < 2.5


def test_trickling_body_is_cut_at_the_deadline_not_after_the_whole_body(fake):
    # Every piece of the body arrives within a fraction of a second, so no per-read timeout
    # fires; only the overall deadline ends the call. The whole body takes 3 s.
    started = time.monotonic()
    result = call(fake.url, ["TRICKLE1"], timeout_seconds=1)
    elapsed = time.monotonic() - started
    assert_failed(result, None, "Request timeout after 1s")
    assert elapsed < 2.5
    assert result.duration_ms < 2500


def test_headers_completed_only_after_the_deadline_are_a_timeout():
    # Each header line comes well within the time left, so no read times out; the answer is
    # complete only after the deadline, and is reported as a timeout, not as an answer.
    def respond(handler):
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        for index in range(6):
            time.sleep(0.2)
            handler.wfile.write(f"X-Slow-{index}: 1\r\n".encode())
        handler.wfile.write(b'Content-Length: 17\r\n\r\n{"success": true}')

    with LoopbackServer(respond) as server:
        result = call(server.url, timeout_seconds=0.5)
    assert_failed(result, None, "Request timeout after 0.5s")


def test_headers_sent_a_line_at_a_time_cannot_stretch_the_call_past_its_timeout():
    stop = threading.Event()

    def respond(handler):
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for index in range(100):
            handler.wfile.write(f"X-Slow-{index}: 1\r\n".encode())
            handler.wfile.flush()
            if stop.wait(0.2):
                return

    with LoopbackServer(respond) as server:
        started = time.monotonic()
        result = call(server.url, timeout_seconds=2)
        elapsed = time.monotonic() - started
        stop.set()
    assert_failed(result, None, "Request timeout after 2s")
    # The whole call ends within the timeout plus one second (it ran 20 s before the guard).
    assert elapsed < 3


def test_trickling_answer_that_ends_in_time_succeeds():
    with FakeCluster(slow_seconds=0.3) as fake:
        result = call(fake.url, ["TRICKLE1"], timeout_seconds=5)
    assert result.success
    assert result.summary == "Applied PE-Enable to 1 customer(s)"


def test_fractional_timeout_is_named_as_given(fake):
    assert call(fake.url, ["SLOW1"], timeout_seconds=0.5).error_message == (
        "Request timeout after 0.5s"
    )


def test_connection_not_accepted_within_the_timeout_is_a_timeout():
    with unconnectable_url() as url:
        started = time.monotonic()
        result = call(url, timeout_seconds=1)
        elapsed = time.monotonic() - started
    assert_failed(result, None, "Request timeout after 1s")
    assert elapsed < 2.5


# Connection failures.


def test_connection_not_accepted_within_the_connect_timeout_fails(monkeypatch):
    # The connect timeout is shortened so that the test need not wait 5 s.
    monkeypatch.setattr(upstream, "CONNECT_TIMEOUT_SECONDS", 0.2)
    with unconnectable_url() as url:
        result = call(url, timeout_seconds=3)
    assert_failed(result, None, "Connection failed: no connection within 0.2s")
    assert result.duration_ms < 2000


def test_refused_connection_fails_without_http_status():
    sock, url = refused_url()
    with sock:
        result = call(url)
    assert_failed(result, None, "Connection failed: connection refused")


def test_unresolvable_host_fails_without_http_status():
    # .invalid is reserved never to resolve (RFC 6761).
    result = call("http://cluster.invalid")
    assert_failed(result, None, "Connection failed: the cluster's host name could not be resolved")


def test_tls_to_a_plain_http_server_fails_with_a_tls_error(fake):
    result = call(fake.url.replace("http://", "https://"))
    assert result.http_status is None
    assert result.error_message.startswith("Connection failed: TLS error (")
    assert fake.counts() == {}


@pytest.fixture
def self_signed_tls(tmp_path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


def test_untrusted_certificate_fails_when_tls_is_verified(self_signed_tls):
    with LoopbackServer(answer(200, {"success": True}), tls=self_signed_tls) as server:
        result = call(server.url, verify_tls=True)
        assert server.received == []
    assert result.http_status is None
    assert result.error_message.startswith("Connection failed: TLS certificate not accepted (")


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_untrusted_certificate_is_accepted_when_verification_is_off(self_signed_tls):
    with LoopbackServer(answer(200, {"success": True}), tls=self_signed_tls) as server:
        result = call(server.url, verify_tls=False)
    assert result.success


def test_connection_closed_mid_body_fails_without_http_status():
    def respond(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        handler.wfile.write(b'{"success": tr')

    with LoopbackServer(respond) as server:
        result = call(server.url)
    assert_failed(
        result,
        None,
        "Connection failed: the connection broke while reading the answer (HTTP 200)",
    )


def test_stopped_cluster_closing_the_connection_unanswered_is_a_connection_failure():
    with FakeCluster(slow_seconds=30) as fake:
        job_id = "8d1f0c2e-0000-4000-8000-000000000001"
        outcome = {}

        def stop_when_request_arrived():
            deadline = time.monotonic() + 5
            while fake.count(job_id) == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            fake.stop()

        stopper = threading.Thread(target=stop_when_request_arrived)
        stopper.start()
        outcome["result"] = call(fake.url, ["SLOW1"], timeout_seconds=10)
        stopper.join()
    # Closed or reset, depending on how far the request got when the fake stopped.
    assert outcome["result"].http_status is None
    assert outcome["result"].error_message in {
        "Connection failed: the cluster closed the connection without answering",
        "Connection failed: connection reset by the cluster",
    }


def test_invalid_base_url_fails_without_raising():
    refused = "Not called: The base URL must start with http:// or https://."
    assert_failed(call("ftp://127.0.0.1:1"), None, refused)
    assert_failed(call("127.0.0.1:1"), None, refused)
    assert_failed(call("http://a b"), None, "Connection failed: the cluster's URL is not valid")


# Per-customer results.


def test_failed_customer_fails_the_call_though_the_cluster_said_success(fake):
    result = call(fake.url, ["C1", "PARTIAL2", "C3"])
    assert_failed(
        result, 200, "1 of 3 customers failed: PARTIAL2 (customer is locked by another operation)"
    )
    assert result.summary == "Applied PE-Enable to 2 of 3 customer(s)"
    assert [(c.cid, c.success) for c in result.customer_results] == [
        ("C1", True),
        ("PARTIAL2", False),
        ("C3", True),
    ]


def test_many_failed_customers_are_named_up_to_five_and_counted():
    cids = [f"C{i}" for i in range(1, 11)]
    results = [{"cid": cid, "success": cid == "C1", "message": f"no {cid}"} for cid in cids]
    results[3]["message"] = ""
    with LoopbackServer(answer(200, {"success": True, "results": results})) as server:
        result = call(server.url, cids)
    assert_failed(
        result,
        200,
        "9 of 10 customers failed: C2 (no C2), C3 (no C3), C4, C5 (no C5), C6 (no C6) and 4 more",
    )
    assert len(result.customer_results) == 10


def test_single_failed_customer_reads_naturally():
    body = {"success": False, "message": "Stopped", "results": [{"cid": "C1", "success": False}]}
    with LoopbackServer(answer(200, body)) as server:
        result = call(server.url, ["C1"])
    assert_failed(result, 200, "Stopped; 1 of 1 customer failed: C1")
    assert result.customer_results == (CustomerResult(cid="C1", success=False, message=""),)


def test_result_for_a_customer_not_sent_fails_the_call_and_is_left_out():
    results = [
        {"cid": "C1", "success": True, "message": "ok"},
        {"cid": "X9", "success": True, "message": "ok"},
    ]
    with LoopbackServer(answer(200, {"success": True, "results": results})) as server:
        result = call(server.url, ["C1"])
    assert_failed(result, 200, "Cluster reported on customers not in the request: X9")
    assert result.customer_results == (CustomerResult(cid="C1", success=True, message="ok"),)


def test_customer_reported_twice_appears_once_and_a_failure_wins():
    results = [
        {"cid": "C1", "success": True, "message": "ok"},
        {"cid": "C2", "success": True},
        {"cid": "C1", "success": False, "message": "rolled back"},
    ]
    with LoopbackServer(answer(200, {"success": True, "results": results})) as server:
        result = call(server.url, ["C1", "C2"])
    assert result.customer_results == (
        CustomerResult(cid="C1", success=False, message="rolled back"),
        CustomerResult(cid="C2", success=True, message=""),
    )
    assert_failed(result, 200, "1 of 2 customers failed: C1 (rolled back)")


def test_customers_missing_from_results_do_not_fail_the_call():
    body = {"success": True, "results": [{"cid": "C1", "success": True}]}
    with LoopbackServer(answer(200, body)) as server:
        result = call(server.url, ["C1", "C2"])
    assert result.success
    assert [c.cid for c in result.customer_results] == ["C1"]


@pytest.mark.parametrize(
    "results",
    [
        {"C1": True},
        ["C1"],
        [{"cid": "C1"}],
        [{"cid": "C1", "success": "yes"}],
        [{"cid": 1, "success": True}],
        [{"cid": "C1", "success": True, "message": 5}],
    ],
)
def test_malformed_results_make_a_success_unrecognised(results):
    body = {"success": True, "message": "Done", "results": results}
    with LoopbackServer(answer(200, body)) as server:
        result = call(server.url, ["C1"])
    assert_failed(
        result,
        200,
        "Unrecognised response from cluster (HTTP 200, application/json): malformed results",
    )
    assert result.customer_results == ()
    assert result.summary == "Done"


def test_malformed_results_keep_the_message_of_a_reported_failure():
    body = {"success": False, "message": "Denied", "results": "C1 failed"}
    with LoopbackServer(answer(200, body)) as server:
        assert_failed(call(server.url, ["C1"]), 200, "Denied")


# The 1 MiB cap.


def test_body_over_1_mib_without_length_is_refused(fake):
    result = call(fake.url, ["HUGE1"])
    assert_failed(result, 200, "Response from cluster is larger than 1 MiB (HTTP 200)")


def json_of_size(size: int) -> bytes:
    head = b'{"success": true, "message": "big", "padding": "'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def test_body_of_exactly_1_mib_is_read():
    with LoopbackServer(answer(200, json_of_size(MAX_RESPONSE_BYTES))) as server:
        result = call(server.url)
    assert result.success
    assert result.summary == "big"


def test_body_one_byte_over_1_mib_is_refused():
    with LoopbackServer(answer(200, json_of_size(MAX_RESPONSE_BYTES + 1))) as server:
        result = call(server.url)
    assert_failed(result, 200, "Response from cluster is larger than 1 MiB (HTTP 200)")


def test_declared_length_over_1_mib_is_refused_without_reading_the_body():
    # The body never comes: only a client that trusts the declared length answers at once.
    def respond(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(MAX_RESPONSE_BYTES + 1))
        handler.end_headers()
        handler.wfile.flush()
        handler.rfile.read(1)

    with LoopbackServer(respond) as server:
        result = call(server.url, timeout_seconds=5)
    assert_failed(result, 200, "Response from cluster is larger than 1 MiB (HTTP 200)")
    assert result.duration_ms < 4000


def test_endless_body_stops_being_read_after_1_mib():
    total = 256 * 1024 * 1024
    piece = b"x" * 65536

    def respond(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        for _ in range(total // len(piece)):
            handler.wfile.write(piece)
            server.count_sent(len(piece))

    with LoopbackServer(respond) as server:
        result = call(server.url, timeout_seconds=10)
    assert_failed(result, 200, "Response from cluster is larger than 1 MiB (HTTP 200)")
    # What the kernel buffered on both sides is all that was written past what was read.
    assert server.bytes_sent < 64 * 1024 * 1024


def test_compressed_body_is_capped_after_decompression():
    bomb = gzip.compress(b" " * (16 * 1024 * 1024) + b'{"success": true}')
    respond = answer(200, bomb, headers={"Content-Encoding": "gzip"})
    with LoopbackServer(respond) as server:
        result = call(server.url, timeout_seconds=5)
    assert len(bomb) < MAX_RESPONSE_BYTES
    assert_failed(result, 200, "Response from cluster is larger than 1 MiB (HTTP 200)")


def test_compressed_body_within_the_cap_is_read():
    respond = answer(200, gzip.compress(b'{"success": true}'), headers={"Content-Encoding": "gzip"})
    with LoopbackServer(respond) as server:
        assert call(server.url).success


def test_error_status_with_a_body_over_1_mib_uses_the_reason_phrase():
    body = json.dumps({"message": "x" * MAX_RESPONSE_BYTES})
    with LoopbackServer(answer(500, body)) as server:
        result = call(server.url)
    assert_failed(result, 500, "API returned status 500: Internal Server Error")


# Text from the cluster is made safe.


def test_huge_error_text_is_cut_to_the_limit():
    with LoopbackServer(answer(200, {"success": False, "message": "y" * 50_000})) as server:
        result = call(server.url)
    assert len(result.error_message) == MAX_ERROR_CHARS
    assert result.error_message.endswith("…")


def test_control_characters_in_cluster_text_become_spaces():
    message = "Line one\r\n\tLine\x00two\x1b[31m\u202e\u2028end"
    results = [{"cid": "C1", "success": False, "message": "bad\x07 \x0bthing"}]
    body = {"success": False, "message": message, "results": results}
    with LoopbackServer(answer(200, body)) as server:
        result = call(server.url, ["C1"])
    texts = [result.error_message, *(c.message for c in result.customer_results)]
    for text in texts:
        assert not [ch for ch in text if unicodedata.category(ch) in {"Cc", "Cf", "Zl"}]
    assert (
        result.error_message == "Line one Line two [31m end; 1 of 1 customer failed: C1 (bad thing)"
    )


def test_token_echoed_by_the_cluster_is_redacted_everywhere():
    def respond(handler):
        echoed = handler.headers["Authorization"]
        body = {
            "success": True,
            "message": f"Applied with {echoed}",
            "results": [{"cid": "C1", "success": False, "message": f"token {TOKEN} refused"}],
        }
        answer(200, body)(handler)

    with LoopbackServer(respond) as server:
        result = call(server.url, ["C1"])
    assert result.summary == "Applied with Bearer [redacted]"
    assert result.customer_results[0].message == "token [redacted] refused"
    assert TOKEN not in repr(result)


@pytest.mark.parametrize(
    "echo",
    [
        lambda token: token.upper(),
        lambda token: token.swapcase(),
        lambda token: quote(token, safe=""),
        lambda token: quote(f"token={token}&x=1", safe=""),
        lambda token: base64.b64encode(token.encode()).decode(),
        lambda token: base64.urlsafe_b64encode(token.encode()).decode(),
        # Inside a longer encoded text, at each of the three byte alignments.
        lambda token: base64.b64encode(f"Authorization: Bearer {token}".encode()).decode(),
        lambda token: base64.b64encode(f"a:{token}:z".encode()).decode(),
        lambda token: base64.b64encode(f"ab:{token}".encode()).decode(),
    ],
)
@pytest.mark.parametrize("token", [TOKEN, "s3cr3t/Tok+en=with:signs?9Q"])
def test_token_echoed_changed_or_encoded_is_redacted(echo, token):
    echoed = echo(token)
    respond = answer(500, {"message": f"refused credentials {echoed} for this call"})
    with LoopbackServer(respond) as server:
        result = call(server.url, token=token)
    assert result.http_status == 500
    assert "[redacted]" in result.error_message
    recovered = recoverable(result.error_message).lower()
    assert not any(token[i : i + 8].lower() in recovered for i in range(len(token) - 7))


def recoverable(text: str) -> str:
    """What `text` gives back decoded every way a cluster could have encoded the token."""
    found = [text, unquote(text)]
    for piece in re.split(r"\[redacted\]|\s", text):
        for start in range(4):
            part = piece[start:]
            part = part[: len(part) - len(part) % 4]
            for decode in (base64.b64decode, base64.urlsafe_b64decode):
                with contextlib.suppress(ValueError):
                    found.append(decode(part).decode("latin-1"))
    return "\n".join(found)


def test_token_in_a_redirect_location_is_redacted():
    respond = answer(302, headers={"Location": f"http://127.0.0.1:1/?t={TOKEN}"})
    with LoopbackServer(respond) as server:
        result = call(server.url)
    assert_failed(result, 302, "Unexpected redirect to http://127.0.0.1:1/?t=[redacted]")


# What is sent.


def test_request_carries_the_contract_headers_and_body():
    with LoopbackServer(answer(200, {"success": True})) as server:
        call(server.url, ["C1", "C2"], job_id="job-42", action=4, action_name="PE-Finalize")
    (received,) = server.received
    assert (received.method, received.path) == ("POST", PATH)
    assert received.headers["Authorization"] == f"Bearer {TOKEN}"
    assert received.headers["Idempotency-Key"] == "job-42"
    assert received.headers["Accept"] == "application/json"
    assert received.headers["User-Agent"] == f"tmsdash/{tmsdash.__version__}"
    assert received.headers["Content-Type"] == "application/json"
    assert json.loads(received.body) == {
        "job_id": "job-42",
        "action": 4,
        "action_name": "PE-Finalize",
        "cids": ["C1", "C2"],
    }


def test_netrc_credentials_never_replace_the_token(tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password other-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with LoopbackServer(answer(200, {"success": True})) as server:
        call(server.url)
    assert server.received[0].headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("token", ["", "two words", "line\nbreak", "caf\u00e9"])
def test_token_unfit_for_a_header_fails_before_anything_is_sent(token):
    with LoopbackServer(answer(200, {"success": True})) as server:
        result = call(server.url, token=token)
        assert server.received == []
    assert_failed(result, None, "The token is empty or has characters not allowed in a header")


# Logging, and the token in nothing but the header.


def test_one_info_line_per_call_names_job_outcome_status_and_duration(fake, caplog):
    caplog.set_level(logging.INFO, logger="jobs.upstream")
    call(fake.url, job_id="job-7")
    lines = [r for r in caplog.records if r.name == "jobs.upstream"]
    assert len(lines) == 1
    assert lines[0].levelno == logging.INFO
    assert lines[0].getMessage().startswith("Set Action call for job job-7: success, HTTP 200, ")
    assert lines[0].getMessage().endswith(" ms")


def test_token_appears_in_no_log_record_and_no_result(fake, self_signed_tls, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="jobs")
    refused, refused_base = refused_url()
    results = []
    with (
        refused,
        LoopbackServer(answer(200, {"success": True}), tls=self_signed_tls) as tls_server,
    ):
        for cids in (["C1"], ["PARTIAL1"], ["E500"], ["REJECT"], ["HTML"], ["REDIRECT"], ["HUGE"]):
            results.append(call(fake.url, cids))
        results.append(call(fake.url, ["TRICKLE1"], timeout_seconds=0.3))
        results.append(call(fake.url, ["SLOW1"], timeout_seconds=0.4))
        results.append(call(refused_base))
        results.append(call(tls_server.url))
        results.append(call("http://cluster.invalid"))
    assert len({r.error_message for r in results}) == len(results)
    assert any(r.name.startswith("urllib3") for r in caplog.records)
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in repr(record.args)
    for result in results:
        for value in dataclasses.astuple(result):
            assert TOKEN not in repr(value)


# Where the call may go, checked again at call time.


@pytest.mark.parametrize(
    ("action_path", "message"),
    [
        ("@127.0.0.2:1/x", "Not called: The action path must start with /."),
        ("//127.0.0.2:1/x", "Not called: The action path may not start with //."),
    ],
)
def test_an_endpoint_that_leaves_the_base_url_is_not_called(action_path, message):
    with LoopbackServer(answer(200, {"success": True})) as server:
        result = call(server.url, action_path=action_path)
    assert_failed(result, None, message)
    assert server.received == []


def test_a_host_no_longer_allowed_is_not_called(settings):
    settings.TMS_ALLOWED_CLUSTER_HOSTS = ["tms.example.net"]
    with LoopbackServer(answer(200, {"success": True})) as server:
        result = call(server.url)
    assert result.error_message.startswith("Not called: The host 127.0.0.1 is not allowed")
    assert server.received == []


@pytest.fixture
def loopback_refused(monkeypatch):
    """Loopback stands in for a link-local address, which no interface here has: a name that
    resolves to it (localhost) is what a name resolving to 169.254.169.254 would be."""
    networks = (*validators.LINK_LOCAL_NETWORKS, ipaddress.ip_network("127.0.0.0/8"))
    monkeypatch.setattr(validators, "LINK_LOCAL_NETWORKS", networks)


def test_a_name_resolving_to_a_refused_address_is_not_called(loopback_refused):
    with LoopbackServer(answer(200, {"success": True})) as server:
        port = server.url.rsplit(":", 1)[1]
        result = call(f"http://localhost:{port}")
    assert result.error_message.startswith("Not called: the cluster's host resolved to 127.0.0.1")
    assert result.http_status is None
    assert server.received == []


def test_a_refused_address_is_called_when_explicitly_allowed(loopback_refused, settings):
    settings.TMS_ALLOW_LINK_LOCAL_CLUSTERS = True
    with LoopbackServer(answer(200, {"success": True})) as server:
        port = server.url.rsplit(":", 1)[1]
        result = call(f"http://localhost:{port}")
    assert result.success
    assert len(server.received) == 1
