"""The OpenAPI description as tools nobody here wrote read it: Redocly (its recommended rules)
and Spectral (`spectral:oas`) find nothing in it, the TypeScript types openapi-typescript makes
of it compile with `tsc --strict`, and a Python client openapi-python-client makes of it runs
a submit, a wait, a retry and a cancel against the production web server, unedited.

The tools are pinned (package.json, requirements-dev.txt) and run from node_modules/.bin and
the venv: nothing is fetched.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from api.tokens import token_create
from jobs.models import Job
from tests.helpers import ROOT, TOKEN, database_url, make_user, worker
from tests.live_web import web_server

BIN = ROOT / "node_modules" / ".bin"
# Redocly asks the internet for updates and sends usage data unless told not to.
OFFLINE = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}
TOOL_SECONDS = 120
# Seconds the job may take to end once a worker runs (it calls the fake cluster once).
JOB_SECONDS = 30


def run(*command: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=OFFLINE,
        capture_output=True,
        text=True,
        timeout=TOOL_SECONDS,
        check=False,
    )


@pytest.fixture(scope="module")
def schema_file(tmp_path_factory) -> Path:
    """The description as `manage.py spectacular` writes it."""
    path = tmp_path_factory.mktemp("schema") / "openapi.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(path))
    return path


OPERATIONS = {
    ("get", "/api/v1/approval-rules"): "approval_rules_list",
    ("post", "/api/v1/approval-rules"): "approval_rules_create",
    ("delete", "/api/v1/approval-rules/{id}"): "approval_rules_delete",
    ("get", "/api/v1/approvals"): "approvals_list",
    ("get", "/api/v1/audit"): "audit_list",
    ("get", "/api/v1/batches/{id}"): "batches_retrieve",
    ("get", "/api/v1/change-freezes"): "change_freezes_list",
    ("post", "/api/v1/change-freezes"): "change_freezes_create",
    ("delete", "/api/v1/change-freezes/{id}"): "change_freezes_delete",
    ("get", "/api/v1/clusters"): "clusters_list",
    ("put", "/api/v1/clusters/{name}/credential"): "clusters_credential_set",
    ("delete", "/api/v1/clusters/{name}/credential"): "clusters_credential_delete",
    ("get", "/api/v1/clusters/{name}/maintenance-windows"): "maintenance_windows_list",
    ("post", "/api/v1/clusters/{name}/maintenance-windows"): "maintenance_windows_create",
    ("delete", "/api/v1/clusters/{name}/maintenance-windows/{id}"): "maintenance_windows_delete",
    ("get", "/api/v1/customers/{cid}/jobs"): "customers_jobs_list",
    ("get", "/api/v1/jobs"): "jobs_list",
    ("get", "/api/v1/jobs/{id}"): "jobs_retrieve",
    ("post", "/api/v1/jobs/{id}/approve"): "jobs_approve",
    ("post", "/api/v1/jobs/{id}/cancel"): "jobs_cancel",
    ("post", "/api/v1/jobs/{id}/deny"): "jobs_deny",
    ("get", "/api/v1/jobs/{id}/customers"): "jobs_customers_list",
    ("post", "/api/v1/jobs/{id}/retry"): "jobs_retry",
    ("get", "/api/v1/run-grants"): "run_grants_list",
    ("post", "/api/v1/run-grants"): "run_grants_create",
    ("delete", "/api/v1/run-grants/{id}"): "run_grants_delete",
    ("get", "/api/v1/saved-set-actions"): "saved_set_actions_list",
    ("post", "/api/v1/saved-set-actions"): "saved_set_actions_create",
    ("get", "/api/v1/schedules"): "schedules_list",
    ("post", "/api/v1/schedules"): "schedules_create",
    ("get", "/api/v1/schedules/{id}"): "schedules_retrieve",
    ("get", "/api/v1/schedules/{id}/next"): "schedules_next",
    ("get", "/api/v1/schedules/{id}/occurrences"): "schedules_occurrences_list",
    ("post", "/api/v1/schedules/{id}/approve"): "schedules_approve",
    ("post", "/api/v1/schedules/{id}/pause"): "schedules_pause",
    ("post", "/api/v1/schedules/{id}/resume"): "schedules_resume",
    ("post", "/api/v1/set-actions"): "set_actions_submit",
    ("get", "/api/v1/stats"): "stats_retrieve",
}
PROBLEM = "application/problem+json"


def operations(schema: dict) -> dict[tuple[str, str], dict]:
    return {
        (method, path): operation
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }


def test_each_operation_is_named_as_a_method_and_documents_every_answer(schema_file):
    schema = json.loads(schema_file.read_text())
    found = operations(schema)
    assert {key: operation["operationId"] for key, operation in found.items()} == OPERATIONS
    for key, operation in found.items():
        assert operation["summary"] and operation["tags"], key
        answers = operation["responses"]
        assert {"400", "401", "405", "406", "429", "500", "503"} <= answers.keys(), key
        assert answers["401"]["headers"]["WWW-Authenticate"]["required"], key
        assert answers["405"]["headers"]["Allow"]["required"], key
        for code in ("429", "503"):
            assert answers[code]["headers"]["Retry-After"]["schema"] == {"type": "integer"}, key
        for code, answer in answers.items():
            if int(code) >= 400:
                name = "ConflictProblem" if code == "409" else "Problem"
                reference = {"$ref": f"#/components/schemas/{name}"}
                assert answer["content"] == {PROBLEM: {"schema": reference}}, (key, code)
    conflict = schema["components"]["schemas"]["ConflictProblem"]["properties"]["jobs"]
    assert conflict["items"] == {"type": "string", "format": "uuid"}
    for path in ("/api/v1/set-actions", "/api/v1/jobs/{id}/retry"):
        answers = schema["paths"][path]["post"]["responses"]
        assert {"201", "409", "415", "422"} <= answers.keys(), path
        assert answers["200"]["headers"]["Idempotent-Replayed"]["required"], path
    # Not a body it reads: a cancel never answers 415.
    assert "415" not in schema["paths"]["/api/v1/jobs/{id}/cancel"]["post"]["responses"]


def test_the_bounds_the_server_enforces_are_declared(schema_file, settings):
    schema = json.loads(schema_file.read_text())
    parameters = {
        (key, parameter["name"]): parameter
        for key, operation in operations(schema).items()
        for parameter in operation.get("parameters", [])
    }
    for key in (
        ("get", "/api/v1/approval-rules"),
        ("get", "/api/v1/approvals"),
        ("get", "/api/v1/audit"),
        ("get", "/api/v1/run-grants"),
        ("get", "/api/v1/customers/{cid}/jobs"),
        ("get", "/api/v1/jobs"),
        ("get", "/api/v1/jobs/{id}/customers"),
    ):
        page_size = parameters[key, "page_size"]["schema"]
        assert page_size == {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}
    wait = parameters[("get", "/api/v1/jobs/{id}"), "wait"]["schema"]
    assert wait == {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 60}
    for key in (("post", "/api/v1/set-actions"), ("post", "/api/v1/jobs/{id}/retry")):
        key_header = parameters[key, "Idempotency-Key"]
        assert key_header["required"] is True
        assert key_header["schema"] == {
            "type": "string",
            "minLength": 1,
            "maxLength": 100,
            "pattern": "^[^\\x00-\\x1f\\x7f]*$",
        }
    cids = schema["components"]["schemas"]["SetActionRequest"]["properties"]["cids"]
    assert (cids["minItems"], cids["maxItems"]) == (1, settings.TMS_MAX_CIDS)
    assert cids["items"]["pattern"] == settings.TMS_CID_PATTERN
    rule = schema["components"]["schemas"]["ApprovalRuleRequest"]["properties"]
    bounds = {
        name: (rule[name]["minimum"], rule[name]["maximum"]) for name in rule if name in NUMBERS
    }
    assert bounds == NUMBERS
    assert (rule["per_run"]["type"], rule["per_run"]["default"]) == ("boolean", False)
    shown = schema["components"]["schemas"]["ApprovalRule"]["properties"]["per_run"]
    assert shown["type"] == "boolean"
    assert set(schema["components"]["schemas"]["ApprovalRuleRequest"]["required"]) == {
        "cluster",
        "action",
        "approvers_group",
    }


NUMBERS = {
    "min_customers": (0, 2**31 - 1),
    "ttl_seconds": (1, 604800),
    "approvers_required": (1, 2),
}


def test_no_string_in_the_address_may_hold_the_nul_the_server_refuses(schema_file, client):
    """tmsdash.middleware.RefuseNulMiddleware answers 400 to a NUL anywhere in the path or
    the query string: every string parameter there says so (an enum or a format holds none)."""
    schema = json.loads(schema_file.read_text())
    strings = [
        (key, parameter["name"], parameter["schema"])
        for key, operation in operations(schema).items()
        for parameter in operation.get("parameters", [])
        if parameter["in"] in ("path", "query")
        and parameter["schema"].get("type") == "string"
        and not {"enum", "format"} & parameter["schema"].keys()
    ]
    assert (("get", "/api/v1/audit"), "event") in {(key, name) for key, name, _ in strings}
    for key, name, declared in strings:
        assert "pattern" in declared, (key, name)
        assert not re.search(declared["pattern"], "a\x00b"), (key, name)
        assert re.search(declared["pattern"], "a\x1fb"), (key, name)
    assert client.get("/api/v1/audit?event=%00").status_code == 400


def test_a_nullable_enum_is_one_enum_with_null_among_its_values(schema_file):
    schemas = json.loads(schema_file.read_text())["components"]["schemas"]
    outcome = schemas["JobCustomer"]["properties"]["outcome"]
    assert outcome["enum"] == ["SUCCESS", "FAILED", None]
    assert (outcome["type"], outcome["nullable"]) == ("string", True)
    assert not [name for name in schemas if name.startswith("Null") or name == "OutcomeEnum"]


def test_redocly_recommended_rules_find_nothing(schema_file):
    result = run(
        BIN / "redocly", "lint", "--config", "redocly.yaml", "--format", "json", schema_file
    )
    report = json.loads(result.stdout)
    assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}, report["problems"]
    assert result.returncode == 0, result.stderr


def test_spectral_oas_rules_find_nothing(schema_file):
    result = run(
        BIN / "spectral",
        "lint",
        "--ruleset",
        ".spectral.yaml",
        "--format",
        "json",
        "--quiet",
        "--fail-severity",
        "hint",
        schema_file,
    )
    # A JSON list of its findings, of every severity: an empty one when there are none.
    assert json.loads(result.stdout) == [], result.stdout
    assert result.returncode == 0, result.stderr


# A nullable enum must be a union with null; operations are named as methods.
USES_THE_TYPES = """
import type { components, operations } from "./api";

type JobCustomer = components["schemas"]["JobCustomer"];
const unreported: JobCustomer["outcome"] = null;
const failed: JobCustomer["outcome"] = "FAILED";
type Submitted = operations["set_actions_submit"]["responses"][201]["content"]["application/json"];
const none: Submitted["batch_id"] = null;
type Busy = operations["jobs_retry"]["responses"][409]["content"]["application/problem+json"];
const busy: Busy["jobs"] = ["0b7c3a52-5d55-4ad7-9e3f-3d1c8e0f6f11"];
type Cancelled = operations["jobs_cancel"]["responses"][200]["content"]["application/json"];
const status: Cancelled["status"] = "CANCELLED";
type Clusters = operations["clusters_list"]["responses"][200]["content"]["application/json"];
const clusters: Clusters = [];
export const used = [unreported, failed, none, busy, status, clusters];
"""


def test_typescript_types_compile_strictly(schema_file, tmp_path):
    made = run(BIN / "openapi-typescript", schema_file, "--output", tmp_path / "api.ts")
    assert made.returncode == 0, made.stderr
    (tmp_path / "use.ts").write_text(USES_THE_TYPES)
    compiled = run(
        BIN / "tsc",
        "--strict",
        "--noEmit",
        "--target",
        "es2022",
        "--module",
        "es2022",
        "--moduleResolution",
        "bundler",
        tmp_path / "api.ts",
        tmp_path / "use.ts",
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr


@pytest.fixture
def python_client(schema_file, tmp_path):
    """The package openapi-python-client generates, importable as `tmsdash_client`."""
    config = tmp_path / "client.yaml"
    # Its default hooks format the code with ruff: nothing a test needs.
    config.write_text("package_name_override: tmsdash_client\npost_hooks: []\n")
    output = tmp_path / "client" / "tmsdash_client"
    made = run(
        Path(sys.executable).parent / "openapi-python-client",
        "generate",
        "--path",
        schema_file,
        "--config",
        config,
        "--output-path",
        output,
        "--meta",
        "none",
    )
    assert made.returncode == 0, made.stdout + made.stderr
    sys.path.insert(0, str(output.parent))
    try:
        yield importlib.import_module("tmsdash_client")
    finally:
        sys.path.remove(str(output.parent))
        for name in [name for name in sys.modules if name.split(".")[0] == "tmsdash_client"]:
            del sys.modules[name]


def stop(process: subprocess.Popen) -> None:
    """A worker stopped as systemd stops it, after the call in hand."""
    process.send_signal(signal.SIGTERM)
    try:
        process.communicate(timeout=JOB_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_generated_python_client_submits_waits_retries_and_cancels(
    python_client, cluster, tmp_path
):
    from tmsdash_client import AuthenticatedClient
    from tmsdash_client.api.jobs import (
        jobs_cancel,
        jobs_customers_list,
        jobs_retrieve,
        jobs_retry,
    )
    from tmsdash_client.api.set_actions import set_actions_submit
    from tmsdash_client.models import ActionEnum, RetryRequest, SetActionRequest

    operator = make_user("op1", "Operators")
    secret = token_create(user=operator, name="generated-client").secret
    with web_server(database_url(), tmp_path / "web.log") as url:
        client = AuthenticatedClient(base_url=url, token=secret, timeout=JOB_SECONDS * 2)
        # One customer the fake cluster fails: the job ends FAILED, and can be retried.
        request = SetActionRequest(
            action=ActionEnum.T_ENABLE,
            cluster=cluster.name,
            cids=["C1", "PARTIAL-1"],
            cluster_token=TOKEN,
        )
        submitted = set_actions_submit.sync_detailed(
            client=client, body=request, idempotency_key="contract-1"
        )
        assert submitted.status_code == 201, submitted.content
        [job] = submitted.parsed.jobs

        running = worker()
        try:
            ended = jobs_retrieve.sync(client=client, id=job.id, wait=JOB_SECONDS)
        finally:
            stop(running)
        assert ended.status == "FAILED", ended
        outcomes = jobs_customers_list.sync(client=client, id=job.id)
        assert {row.cid: row.outcome for row in outcomes.results} == {
            "C1": "SUCCESS",
            "PARTIAL-1": "FAILED",
        }

        # No worker runs now: the retry's job stays queued until it is cancelled.
        retried = jobs_retry.sync_detailed(
            client=client,
            id=job.id,
            body=RetryRequest(cluster_token=TOKEN),
            idempotency_key="contract-2",
        )
        assert retried.status_code == 201, retried.content
        [retry] = retried.parsed.jobs
        assert retry.retry_of == job.id

        cancelled = jobs_cancel.sync_detailed(client=client, id=retry.id)
        assert cancelled.status_code == 200, cancelled.content
        assert cancelled.parsed.status == "CANCELLED"
    assert Job.objects.get(pk=retry.id).status == Job.Status.CANCELLED
