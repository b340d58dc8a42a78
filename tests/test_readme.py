"""README.md is a front page: short, the two commands first, links that resolve, and examples that run.

Its shell examples are re-run from a scratch folder holding the files the README itself shows (a code block
whose first line is ``# NAME`` is written to NAME), so the own-model example runs on the README's model.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

_spec = importlib.util.spec_from_file_location("docs_examples", Path(__file__).with_name("docs_examples.py"))
dx = importlib.util.module_from_spec(_spec)
sys.modules["docs_examples"] = dx
_spec.loader.exec_module(dx)

ROOT = dx.ROOT
README = ROOT / "README.md"
TEXT = README.read_text()
FASHION = Path("/usr/share/datasets/fashion-mnist")

# regex on the command -> why the README example is not re-run here
NOT_RERUN: dict[str, str] = {
    r"^ablab check$": "takes ~8 s; re-run with its output by tests/test_docs_examples.py (docs/reference.md)",
    r"^ablab train lenet5 ": "trains on the full Fashion-MNIST (tests/test_train_cli.py trains and evaluates)",
    r"^ablab eval ": "evaluates the checkpoint of the training run above it",
    r"^ablab study run lenet5v1\.toml$": "trains 9 runs (tests/test_study_run.py runs studies on tiny data)",
    r"^ablab study report runs/": "reports the study run above it",
    r"^ablab train mymodel\.py:": "trains on the full Fashion-MNIST (tests/test_own_model.py trains own models)",
}


def reason(example) -> str | None:
    return next((why for pattern, why in NOT_RERUN.items() if re.search(pattern, example.command)), None)


def shown_files() -> dict[str, str]:
    """The files the README shows: a code block whose first line is a ``# NAME.ext`` comment."""
    out = {}
    for _, _, lines in dx.fenced_blocks(TEXT):
        m = re.fullmatch(r"# ([\w.-]+\.\w+)", lines[0].strip()) if lines else None
        if m:
            out[m.group(1)] = "\n".join(lines) + "\n"
    return out


def test_readme_is_a_front_page() -> None:
    lines = TEXT.splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; the reference belongs in docs/"
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[0] == "## Two commands"
    for job in ("Size up", "Check the math", "Compare"):
        assert f"## {job}" in headings


def test_readme_opens_with_the_two_commands_and_they_set_everything_up() -> None:
    first_line, _, first_block = dx.fenced_blocks(TEXT)[0]
    assert first_line < 15, "the two commands come first"
    assert [line.split()[:2] for line in first_block] == [["make", "study"], ["make", "test"]]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^study: setup\b", makefile, re.M) and re.search(r"^test: setup\b", makefile, re.M)
    assert "pip install" in makefile and "[dev" in makefile  # the test tools, mkdocs included


def test_readme_links_resolve() -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", TEXT)
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert len(local) >= 5, local
    for link in local:
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.exists(), f"README links to {link}: no such file"
        if anchor:
            slugs = {slugify(h.lstrip("#").strip(), "-") for h in target.read_text().splitlines()
                     if h.startswith("#")}
            assert anchor in slugs, f"README links to {link}: no such heading in {path}"
    linked = {(ROOT / link.partition("#")[0]).resolve() for link in local}
    for page in ("summary.md", "reference.md", "train.md", "study.md"):
        assert (ROOT / "docs" / page).resolve() in linked, f"README does not link docs/{page}"


def test_readme_shows_your_own_model_and_the_notebook() -> None:
    files = shown_files()
    assert "class LeNet5V1(nn.Module)" in files["mymodel.py"]
    assert 'model = "mymodel.py:LeNet5V1"' in files["lenet5v1.toml"]
    assert "model_args = { use_dropout = true }" in files["lenet5v1.toml"]
    assert "ablab summary mymodel.py:LeNet5V1 --input 1x28x28" in TEXT
    assert "examples/quickstart.ipynb" in TEXT and "ablab.summary(LeNet5V1(), (1, 28, 28))" in TEXT


def test_the_readme_model_is_the_one_it_claims() -> None:
    """The README's LeNet5V1, built with torch: 61,706 parameters, the numbers the README prints for lenet5."""
    torch = pytest.importorskip("torch")
    namespace: dict = {}
    exec(compile(shown_files()["mymodel.py"], "mymodel.py", "exec"), namespace)
    model = namespace["LeNet5V1"]()
    assert sum(p.numel() for p in model.parameters()) == 61_706
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    with_flags = namespace["LeNet5V1"](use_dropout=True, use_batch_norm=True)
    assert sum(p.numel() for p in with_flags.parameters()) == 61_706 + 2 * (6 + 16)  # batch norm's gamma, beta


def params():
    out = []
    for e in dx.examples(README):
        marks = []
        why = reason(e)
        if why:
            marks.append(pytest.mark.skip(reason=why))
        elif "fashion-mnist" in e.command:
            marks += [pytest.mark.realdata,
                      pytest.mark.skipif(not FASHION.is_dir(), reason="needs Debian's dataset-fashion-mnist")]
        out.append(pytest.param(e, id=f"{e.where} {e.command[:60]}", marks=marks))
    return out


@pytest.mark.parametrize("example", params())
def test_readme_example_runs(example, tmp_path: Path) -> None:
    for name, text in shown_files().items():
        (tmp_path / name).write_text(text)
    code, output = dx.run(example, cwd=tmp_path)
    assert code == 0, f"{example.where}: `{example.command}` exited {code}:\n{output}"
    if example.expected is not None:
        assert dx.matches(example.expected, output), (
            f"{example.where}: `{example.command}` no longer prints what README.md shows. It printed:\n{output}")


def test_every_not_rerun_entry_still_names_an_example() -> None:
    commands = [e.command for e in dx.examples(README)]
    for pattern, why in NOT_RERUN.items():
        assert any(re.search(pattern, c) for c in commands), f"NOT_RERUN {pattern!r} ({why}) matches nothing"


def test_readme_notebook_summary_line_works() -> None:
    """The notebook snippet's first line: ``ablab.summary(LeNet5V1(), (1, 28, 28))`` renders as an HTML table."""
    pytest.importorskip("torch")
    import ablab

    if not hasattr(ablab, "summary"):
        pytest.skip("top-level ablab.summary (issue 11) is not on main yet")
    namespace: dict = {}
    exec(compile(shown_files()["mymodel.py"], "mymodel.py", "exec"), namespace)
    s = ablab.summary(namespace["LeNet5V1"](), (1, 28, 28))
    assert s.totals.params == 61_706 and s.totals.macs == 416_520
    assert "<table" in s._repr_html_()
