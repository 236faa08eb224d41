"""`make audit` says plainly when a vulnerability database cannot be reached, instead of
reporting a clean result: pip-audit's reports as it writes them, and the real npm against an HTTP
server on loopback standing in for the registry."""

from __future__ import annotations

import json

from devtools.dependency_audit import CLEAN, UNREACHABLE, VULNERABLE, npm_audit, pip_verdict
from tests.servers import LoopbackServer, answer

BULK = "/-/npm/v1/security/advisories/bulk"
# What pip-audit 2.10 prints with --strict where PyPI's JSON API answers 404 (a proxy serving
# only the package index): no report, an error naming the first package it could not audit.
NOT_FOUND = (
    "ERROR:pip_audit._cli:aiosmtpd: Dependency not found on PyPI and could not be audited: "
    "aiosmtpd (1.4.6)\n"
)


def test_pip_audit_failing_without_a_report_is_not_audited():
    status, message = pip_verdict(1, "", NOT_FOUND)
    assert status == UNREACHABLE
    assert message == (
        "pip-audit: NOT AUDITED: its vulnerability database cannot be reached: " + NOT_FOUND.strip()
    )


def test_pip_audit_with_a_package_skipped_is_not_audited_whatever_its_exit_status():
    skipped = {"name": "django", "skip_reason": "Dependency not found on PyPI"}
    audited = {"name": "requests", "version": "2.34.2", "vulns": []}
    report = json.dumps({"dependencies": [audited, skipped], "fixes": []})
    status, message = pip_verdict(0, report, "No known vulnerabilities found\n")
    assert status == UNREACHABLE
    assert message.startswith("pip-audit: NOT AUDITED: 1 of 2 packages could not be audited")


def test_pip_audit_names_a_vulnerable_package():
    vulnerable = {
        "name": "django",
        "version": "5.2.0",
        "vulns": [{"id": "PYSEC-1", "fix_versions": []}],
    }
    report = json.dumps({"dependencies": [vulnerable], "fixes": []})
    assert pip_verdict(1, report, "") == (
        VULNERABLE,
        "pip-audit: FAILED: 1 vulnerable: django 5.2.0 (PYSEC-1)",
    )


def test_pip_audit_clean_counts_the_packages_audited():
    audited = [{"name": name, "version": "1.0", "vulns": []} for name in ("a", "b")]
    report = json.dumps({"dependencies": audited, "fixes": []})
    assert pip_verdict(0, report, "") == (
        CLEAN,
        "pip-audit: 2 packages audited, no known vulnerabilities.",
    )


def test_npm_audit_without_the_advisory_endpoint_says_nothing_was_audited(capsys):
    with LoopbackServer(answer(405)) as registry:
        status = npm_audit("--registry", registry.url + "/")
    assert status == UNREACHABLE
    out = capsys.readouterr().out
    assert out.startswith("npm audit: NOT AUDITED: its vulnerability database cannot be reached")
    assert "no known vulnerabilities" not in out
    assert [r.method for r in registry.received if r.path == BULK] == ["POST"]


def test_npm_audit_with_no_advisories_counts_the_packages_audited(capsys):
    with LoopbackServer(answer(200, {})) as registry:
        status = npm_audit("--registry", registry.url + "/")
    assert status == CLEAN
    out = capsys.readouterr().out.strip()
    assert out.startswith("npm audit: ") and out.endswith(
        " packages audited, no known vulnerabilities."
    )
    assert int(out.split()[2]) >= 2


def test_npm_audit_names_a_vulnerable_package(capsys):
    advisory = {
        "id": 1,
        "url": "https://example.net/advisories/1",
        "title": "Cross-site scripting",
        "severity": "high",
        "vulnerable_versions": "<99.0.0",
        "cwe": ["CWE-79"],
        "cvss": {"score": 7.5, "vectorString": None},
    }
    # npm reads the vulnerable package's metadata too, to say which version fixes it.
    packument = {
        "name": "htmx.org",
        "dist-tags": {"latest": "2.0.11"},
        "versions": {"2.0.11": {"name": "htmx.org", "version": "2.0.11"}},
    }
    bulk, metadata = answer(200, {"htmx.org": [advisory]}), answer(200, packument)

    def respond(handler):
        (bulk if handler.path == BULK else metadata)(handler)

    with LoopbackServer(respond) as registry:
        status = npm_audit("--registry", registry.url + "/")
    assert status == VULNERABLE
    assert capsys.readouterr().out == "npm audit: FAILED: 1 vulnerable: htmx.org (high).\n"
