"""`make audit`: pip-audit and npm audit, failing plainly when a vulnerability database is out of
reach instead of reporting a clean result.

pip-audit asks PyPI's JSON API (https://pypi.org/pypi/NAME/VERSION/json) for each installed
package's known vulnerabilities; npm audit posts the lock file's packages to the registry's bulk
advisory endpoint. Where a proxy serves only the package indexes, or there is no network, pip-audit
skips every package as "not found on PyPI" and still prints "No known vulnerabilities found", and
npm audit fails with a message about its endpoint. So pip-audit runs with --strict (a package it
could not audit fails the run, with no report), and each tool's JSON report is read rather than
its exit status alone: no report, or a package skipped, is "not audited".

Exit status: 0 when every package was audited and none is vulnerable, 1 when one is, 2 when a
vulnerability database could not be reached (something was not audited).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLEAN, VULNERABLE, UNREACHABLE = 0, 1, 2


def _report(stdout: str) -> dict | None:
    try:
        report = json.loads(stdout)
    except ValueError:
        return None
    return report if isinstance(report, dict) else None


def pip_verdict(returncode: int, stdout: str, stderr: str) -> tuple[int, str]:
    """pip-audit's JSON report and exit status read: the exit status they call for and what to
    say."""
    report = _report(stdout)
    dependencies = report.get("dependencies") if report else None
    lines = stderr.strip().splitlines()
    if not isinstance(dependencies, list) or (returncode and not dependencies):
        reason = lines[-1] if lines else "no audit report"
        return UNREACHABLE, (
            f"pip-audit: NOT AUDITED: its vulnerability database cannot be reached: {reason}"
        )
    skipped = [d["name"] for d in dependencies if "skip_reason" in d]
    if skipped:
        return UNREACHABLE, (
            f"pip-audit: NOT AUDITED: {len(skipped)} of {len(dependencies)} packages could not be "
            f"audited (its vulnerability database out of reach?): {', '.join(skipped)}"
        )
    found = [d for d in dependencies if d.get("vulns")]
    if found or returncode:
        names = ", ".join(
            f"{d['name']} {d['version']} ({', '.join(v['id'] for v in d['vulns'])})" for d in found
        )
        return VULNERABLE, f"pip-audit: FAILED: {len(found)} vulnerable: {names}"
    return CLEAN, f"pip-audit: {len(dependencies)} packages audited, no known vulnerabilities."


def pip_audit() -> int:
    command = [sys.executable, "-m", "pip_audit", "--strict", "--format", "json"]
    result = subprocess.run([*command, "--progress-spinner", "off"], capture_output=True, text=True)
    status, message = pip_verdict(result.returncode, result.stdout, result.stderr)
    print(message)
    return status


def npm_verdict(stdout: str) -> tuple[int, str]:
    """npm audit's JSON output read: the exit status it calls for and what to say."""
    report = _report(stdout)
    if report is None or "auditReportVersion" not in report:
        message = report.get("message") if report else None
        return UNREACHABLE, (
            "npm audit: NOT AUDITED: its vulnerability database cannot be reached: "
            f"{message or 'no audit report'}."
        )
    found = report["vulnerabilities"]
    audited = report["metadata"]["dependencies"]["total"]
    if found:
        names = ", ".join(f"{name} ({entry['severity']})" for name, entry in sorted(found.items()))
        return VULNERABLE, f"npm audit: FAILED: {len(found)} vulnerable: {names}."
    return CLEAN, f"npm audit: {audited} packages audited, no known vulnerabilities."


def npm_audit(*npm_args: str) -> int:
    npm = shutil.which("npm")
    if npm is None:
        print("npm audit: NOT AUDITED: npm is not installed.")
        return UNREACHABLE
    result = subprocess.run(
        [npm, "audit", "--json", *npm_args], cwd=ROOT, capture_output=True, text=True
    )
    status, message = npm_verdict(result.stdout)
    print(message)
    return status


def main() -> int:
    return max(pip_audit(), npm_audit())


if __name__ == "__main__":
    sys.exit(main())
