"""The layout's rules, read from the source: imports run one way, and each room keeps to itself.

Interfaces (views, admin, commands, tasks) import services, services import models; `audit` is
at the bottom and imports nothing of `jobs`; `lib` imports no app; the product (`jobs`,
`audit`) imports nothing of `legacy` or `devtools`; `ops` (workers, housekeeping, health,
metrics) runs the product and `jobs` knows nothing of it; `notifications` hears of jobs' ends
through a signal and `jobs` knows nothing of it either; no app imports another app's admin or
views.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ("jobs", "audit", "legacy", "ops", "devtools", "notifications", "schedules", "accounts")
PACKAGES = (*APPS, "lib", "tmsdash")
# What each package must never import.
FORBIDDEN = {
    "audit": ("jobs", "legacy", "ops", "devtools", "notifications", "schedules", "accounts"),
    "lib": (
        "jobs",
        "audit",
        "legacy",
        "devtools",
        "tmsdash",
        "notifications",
        "schedules",
        "accounts",
    ),
    "jobs": ("legacy", "ops", "devtools", "notifications", "schedules", "accounts"),
    "schedules": ("legacy", "ops", "devtools", "notifications", "accounts"),
    "accounts": ("legacy", "ops", "devtools", "notifications", "api"),
    "notifications": ("legacy", "ops", "devtools"),
    "ops": ("legacy", "devtools"),
    "legacy": ("devtools",),
    "bench": ("tests",),
}


def sources(*packages: str) -> list[Path]:
    return sorted(path for package in packages for path in (ROOT / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_run_one_way(package):
    wrong = {
        f"{name(path)} imports {module}"
        for path in sources(package)
        for module in imported(path)
        if module.split(".")[0] in FORBIDDEN[package]
    }
    assert not wrong


def test_no_app_reaches_into_another_apps_admin_or_views():
    wrong = {
        f"{name(path)} imports {module}"
        for path in sources(*PACKAGES)
        for module in imported(path)
        if re.fullmatch(r"\w+\.(admin|views)(\..*)?", module)
        and module.split(".")[0] in APPS
        and module.split(".")[0] != name(path).split("/")[0]
        # The project's URLs wire the apps' views in: that is their job.
        and name(path) != "tmsdash/urls.py"
    }
    assert not wrong


def test_only_audit_services_writes_the_audit_trail():
    writes = re.compile(r"AuditEntry(\.objects|\._default_manager)\.\w*(create|update)\w*\(")
    wrong = {
        name(path)
        for path in sources(*PACKAGES, "bench")
        if "migrations" not in path.parts
        and path != ROOT / "audit" / "services.py"
        and writes.search(path.read_text())
    }
    assert not wrong


# The only code that posts anywhere: to clusters and to webhook endpoints, both through the
# deadline guard, and to the identity provider.
HTTP_CLIENTS = {
    "jobs/upstream.py",
    "notifications/webhooks.py",
    "lib/guarded_http.py",
    # The identity provider's client (Authlib over requests), which only catches its errors.
    "accounts/services/provider.py",
}


def test_only_the_cluster_and_webhook_clients_import_requests():
    importers = {
        name(path)
        for path in sources(*PACKAGES)
        if any(module.split(".")[0] == "requests" for module in imported(path))
    }
    assert importers == HTTP_CLIENTS
