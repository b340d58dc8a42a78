"""The documentation site (mkdocs.yml, docs/) builds with ``mkdocs build --strict``: a broken link, a missing
anchor or a page left out of the nav fails ``make test``. Nothing is downloaded at build time."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def build(project: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of ``project`` into ``site``. (Not ``-q``: a quiet build drops the warnings
    that --strict counts, and passes.)"""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=project, env=env, capture_output=True, text=True, timeout=300)


def copy_project(tmp: Path) -> Path:
    project = tmp / "project"
    project.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", project)
    shutil.copytree(ROOT / "docs", project / "docs")
    return project


def test_mkdocs_material_is_installed() -> None:
    """Not skipped when missing: the dev extra installs it (pip install -e '.[dev]', as make test does)."""
    import material  # noqa: F401
    import mkdocs  # noqa: F401


def test_the_site_builds_strict(tmp_path: Path) -> None:
    done = build(ROOT, tmp_path / "site")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    for page in (ROOT / "docs").rglob("*.md"):
        rel = page.relative_to(ROOT / "docs").with_suffix("")
        html = tmp_path / "site" / ("index.html" if rel.name == "index" else f"{rel}/index.html")
        assert html.is_file(), f"{page} was not built"
    home = (tmp_path / "site" / "index.html").read_text()
    assert "make study" in home and "make test" in home
    # no web fonts or other resources fetched from elsewhere: the site reads offline
    for html in (tmp_path / "site").rglob("*.html"):
        assert "fonts.googleapis.com" not in html.read_text(), html


def test_every_page_is_in_the_nav() -> None:
    import yaml

    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)

    def pages(nav) -> list[str]:
        out = []
        for item in nav:
            for value in item.values() if isinstance(item, dict) else [item]:
                out += pages(value) if isinstance(value, list) else [value]
        return out

    in_nav = pages(config["nav"])
    on_disk = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(in_nav) == on_disk
    assert config["strict"] == "true" and config["theme"]["name"] == "material"


@pytest.mark.parametrize(("page_text", "what"), [
    ("See [the grammar](no-such-page.md).", "a link to a missing page"),
    ("See [lint](summary.md#no-such-heading).", "a link to a missing anchor"),
])
def test_strict_fails_on(tmp_path: Path, page_text: str, what: str) -> None:
    project = copy_project(tmp_path)
    with open(project / "docs" / "index.md", "a") as f:
        f.write("\n" + page_text + "\n")
    done = build(project, tmp_path / "site")
    assert done.returncode != 0, f"--strict let {what} through"


def test_strict_fails_on_a_page_left_out_of_the_nav(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    (project / "docs" / "orphan.md").write_text("# An orphan\n")
    done = build(project, tmp_path / "site")
    assert done.returncode != 0 and "orphan.md" in done.stderr
