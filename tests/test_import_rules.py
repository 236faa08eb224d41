"""The import rules (the import-linter contracts in pyproject.toml) hold, and they would catch
an import that breaks one; and no module has grown past one idea's size.

`make test` runs `lint-imports` itself; these tests plant a break in a copy of the tree, so a
contract that stopped checking anything fails here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
# Past this many lines a module holds more than one idea: split it by idea.
MAX_LINES = 500
# Not product code: the tests, installed packages and collected files (and, below, migrations,
# which Django writes).
NOT_PRODUCT = ("tests", "node_modules", "var")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The packages' Python files and the contracts, copied to a scratch folder."""
    for package in CONFIG["root_packages"]:
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=lambda folder, names: (
                [
                    name
                    for name in names
                    if not name.endswith(".py") and not (Path(folder) / name).is_dir()
                ]
                + ["__pycache__"]
            ),
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_tree_keeps_every_import_rule():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(CONFIG['contracts'])} kept, 0 broken" in result.stdout


LAZY = "\n\ndef planted():\n    {}\n"


@pytest.mark.parametrize(
    ("planted", "broken"),
    [
        ({"lib/planted.py": "import jobs.models\n"}, "Apps import only the apps below them"),
        ({"audit/planted.py": LAZY.format("from jobs import models")}, "Apps import only"),
        (
            {"jobs/models/jobs.py": LAZY.format("from jobs import services")},
            "jobs: interfaces above",
        ),
        (
            {"jobs/services/submit.py": LAZY.format("from jobs.views import jobs")},
            "jobs: interfaces above",
        ),
        (
            {"notifications/models.py": LAZY.format("from notifications import delivery")},
            "notifications: interfaces above",
        ),
        ({"ops/planted.py": "import devtools.fake_cluster\n"}, "The product imports no"),
        ({"api/planted.py": "import bench.submit\n"}, "The product imports no"),
        ({"jobs/planted.py": "import tests.helpers\n"}, "The product imports no"),
        # Loops: between two modules, and a module importing its own package's __init__.
        (
            {
                "lib/chunks.py": LAZY.format("from lib import argtypes"),
                "lib/argtypes.py": "from lib import chunks\n",
            },
            "No module imports one that imports it back",
        ),
        (
            {"jobs/services/submit.py": LAZY.format("import jobs.services")},
            "No module imports one that imports it back",
        ),
    ],
)
def test_an_import_breaking_a_rule_fails(tree, planted, broken):
    for path, added in planted.items():
        with (tree / path).open("a") as module:
            module.write(added)
    result = lint_imports(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert broken in result.stdout.split("Broken contracts")[1]


def oversized(root: Path) -> list[str]:
    """The product's modules over MAX_LINES lines."""
    found = []
    for top in sorted(root.iterdir()):
        if top.name.startswith(".") or top.name in NOT_PRODUCT or top.is_symlink():
            continue
        for path in sorted(top.rglob("*.py")) if top.is_dir() else [top]:
            lines = len(path.read_text().splitlines()) if path.suffix == ".py" else 0
            if lines > MAX_LINES and "migrations" not in path.parts:
                found.append(f"{path.relative_to(root)}: {lines} lines")
    return found


def test_no_product_module_is_over_500_lines():
    assert oversized(ROOT) == []


def test_a_module_over_500_lines_is_found(tmp_path):
    (tmp_path / "jobs" / "migrations").mkdir(parents=True)
    (tmp_path / "jobs" / "big.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "jobs" / "fits.py").write_text("x = 1\n" * MAX_LINES)
    (tmp_path / "jobs" / "migrations" / "0001_big.py").write_text("x = 1\n" * 1000)
    assert oversized(tmp_path) == ["jobs/big.py: 501 lines"]
