"""Every ``$ ablab ...`` example in docs/*.md is re-run and must print what the page shows.

The pages are the reference the site is built from; a figure in them that the code no longer prints is a
bug. An example that cannot be re-run here (it downloads, trains for minutes, or is abbreviated) is listed
in NOT_RERUN with the reason, and a test keeps that list from going stale. A new example on any page is
re-run without anyone registering it.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("docs_examples", Path(__file__).with_name("docs_examples.py"))
dx = importlib.util.module_from_spec(_spec)
sys.modules["docs_examples"] = dx
_spec.loader.exec_module(dx)

DOCS = dx.ROOT / "docs"
FASHION = Path("/usr/share/datasets/fashion-mnist")

# (page, regex on the command) -> why the example is not re-run
NOT_RERUN: dict[tuple[str, str], str] = {
    ("docs/data.md", r"^ablab data fetch "): "downloads from the internet",
    ("docs/ray.md", r"^ablab study run .* --executor ray"): "needs a Ray cluster; tests/test_ray_executor.py runs one",
    ("docs/study.md", r"^ablab study run tiny\.toml$"): "three errors from three different study files, shown together",
    ("docs/study.md", r"--dry-run$"): "its output is a measured time estimate; tests/test_study_run.py checks dry runs",
    ("docs/summary.md", r" \.\.\. "): "the command itself is abbreviated (the full one is the example above it)",
    ("docs/train.md", r"^ablab train "): "trains on the full Fashion-MNIST and prints wall times",
    ("docs/train.md", r"^ablab eval "): "evaluates a checkpoint made by a training run above",
    ("docs/own-loop.md", r"^ablab study run "): "six trainings on the full Fashion-MNIST (about two minutes; "
                                                "prints wall times)",
    ("docs/own-model.md", r"^ablab study run "): "six trainings (about a minute; prints wall times); "
                                                  "tests/test_own_model.py runs a study of the same kind",
}


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def all_examples() -> list:
    return [e for page in pages() for e in dx.examples(page)]


def not_rerun_reason(example) -> str | None:
    for (page, pattern), reason in NOT_RERUN.items():
        if example.page == page and re.search(pattern, example.command):
            return reason
    return None


def params():
    out = []
    for e in all_examples():
        marks = []
        reason = not_rerun_reason(e)
        if reason:
            marks.append(pytest.mark.skip(reason=reason))
        elif "fashion-mnist" in e.command or e.command.startswith("ablab data"):
            marks += [pytest.mark.realdata,
                      pytest.mark.skipif(not FASHION.is_dir(), reason="needs Debian's dataset-fashion-mnist")]
        out.append(pytest.param(e, id=f"{e.where} {e.command[:60]}", marks=marks))
    return out


@pytest.mark.parametrize("example", params())
def test_doc_example_prints_what_the_page_shows(example) -> None:
    code, output = dx.run(example)
    if example.expected is None:
        assert code == 0, f"{example.where}: `{example.command}` exited {code}:\n{output}"
        return
    shown_error = dx.normalize(example.expected)[0].startswith("error:")
    assert (code == 2) == shown_error, f"{example.where}: `{example.command}` exited {code}:\n{output}"
    assert dx.matches(example.expected, output), (
        f"{example.where}: `{example.command}` no longer prints what the page shows. It printed:\n{output}\n"
        "Update the page (a line '...' stands for any lines), or if the example cannot be re-run fast, "
        "add it to NOT_RERUN in tests/test_docs_examples.py with the reason.")


def test_every_not_rerun_entry_still_names_an_example() -> None:
    examples = all_examples()
    for (page, pattern), reason in NOT_RERUN.items():
        assert any(e.page == page and re.search(pattern, e.command) for e in examples), (
            f"NOT_RERUN entry ({page!r}, {pattern!r}: {reason}) matches no example any more: remove it")


def test_most_examples_are_rerun() -> None:
    examples = all_examples()
    rerun = [e for e in examples if not_rerun_reason(e) is None]
    assert len(examples) >= 20 and len(rerun) >= 0.6 * len(examples), (len(rerun), len(examples))


def test_the_matcher_is_strict_where_it_should_be() -> None:
    assert dx.matches("a\n...\nd", "a\nb\nc\nd")
    assert dx.matches("a\n...\nd", "a\nd")
    assert not dx.matches("a\n...\nd", "a\nb\nc")
    assert not dx.matches("a\nb", "a\nb\nc")  # no silent trailing output: an excerpt ends with '...'
    assert not dx.matches("total 61,706", "total 61,707")
    assert dx.matches("│ x │ 2.8e-16 (dw) │", "│ x │   4.4e-16 (dx) │")  # round-off residuals only
    assert not dx.matches("2.32e+12 FLOPs", "2.33e+12 FLOPs")
    assert dx.matches("Parameters: 61,706 ...", "Parameters: 61,706 (61,706 trainable) = 241.04 KiB")
    assert not dx.matches("Parameters: 61,706 ...", "Parameters: 61,707 (61,707 trainable)")
