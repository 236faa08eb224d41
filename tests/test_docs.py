"""The README is a short front door into docs/, and docs/ is built strictly: what would make
a page lie by omission (a broken link or anchor, a page left out of the nav, a screenshot the
tour no longer takes) fails `make test`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
# A Markdown link or image: [text](target) or ![alt](target).
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
SCREENSHOT = re.compile(r"screenshots/([\w-]+\.png)")


def links(path: Path) -> list[str]:
    return LINK.findall(path.read_text())


def nav_pages() -> set[str]:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    return {page for entry in config["nav"] for page in entry.values()}


def build(config: Path) -> subprocess.CompletedProcess:
    """`make docs`, the target `make test` runs, on the site that `config` describes."""
    return subprocess.run(
        [shutil.which("make"), "--no-print-directory", "docs", f"DOCS_CONFIG={config}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def site_copy(tmp_path: Path) -> Path:
    """A copy of mkdocs.yml and docs/, to break; returns the copy's mkdocs.yml."""
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(DOCS, tmp_path / "docs")
    return tmp_path / "mkdocs.yml"


def test_the_docs_copy_builds_unbroken(site_copy):
    """The control for the tests below: the copy they break builds as it is."""
    result = build(site_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (site_copy.parent / "var" / "site" / "operator-guide.html").exists()


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda docs: append(docs / "index.md", "\n[gone](no-such-page.md)\n"), "no-such-page.md"),
        (
            lambda docs: append(docs / "index.md", "\n[gone](api.md#no-such-section)\n"),
            "no-such-section",
        ),
        (lambda docs: (docs / "orphan.md").write_text("# Orphan\n"), "orphan.md"),
        (lambda docs: (docs / "security.md").unlink(), "security.md"),
    ],
    ids=["broken-link", "broken-anchor", "page-missing-from-nav", "nav-entry-without-page"],
)
def test_a_broken_docs_site_fails_the_build(site_copy, breakage, message):
    breakage(site_copy.parent / "docs")
    result = build(site_copy)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Aborted with" in output and "in strict mode" in output, output
    assert message in output


def test_readme_is_a_front_door_of_at_most_250_lines():
    assert len(README.read_text().splitlines()) <= 250


def test_readme_links_only_to_docs_pages_that_exist():
    pages = nav_pages()
    local = [target for target in links(README) if "://" not in target]
    assert local, "the README links to no docs page"
    for target in local:
        path = target.split("#")[0]
        assert (ROOT / path).is_file(), target
        assert path.startswith("docs/"), target
        if path.endswith(".md"):
            assert path.removeprefix("docs/") in pages, f"{target} is not in the docs' nav"


def test_readme_links_to_every_docs_page():
    linked = {target.split("#")[0].removeprefix("docs/") for target in links(README)}
    assert nav_pages() - {"index.md"} <= linked


def test_the_docs_show_every_screenshot_the_tour_takes_and_no_other():
    tour = (ROOT / "tests" / "e2e" / "test_tour.py").read_text()
    taken = set(re.findall(r'screenshot\(\w+, "([\w-]+\.png)"\)', tour))
    shown = {
        name
        for path in [README, *DOCS.glob("*.md")]
        for name in SCREENSHOT.findall(path.read_text())
    }
    on_disk = {path.name for path in (DOCS / "screenshots").glob("*.png")}
    assert taken == shown == on_disk
