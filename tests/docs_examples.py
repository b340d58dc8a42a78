"""Shell examples in Markdown (README.md, docs/*.md), parsed so tests can re-run them.

An example is a ``$ ablab ...`` line inside a fenced code block; the lines after it, up to the next ``$``
line or the end of the block, are the output the page shows. In that output a line ``...`` (alone, or
indented) stands for any number of lines and ``...`` within a line for any text, so a page can show an
excerpt; when no output is shown the example only has to run. Commands are run in-process with click's
``CliRunner`` (stdout and stderr together, as a terminal shows them), so an example costs what the command
costs and nothing more.
"""

from __future__ import annotations

import functools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^(```+|~~~+)(.*)$")
# measured figures that change from run to run or machine to machine: replaced before comparing
# (a table row holding one is compared with its runs of spaces collapsed: column widths follow the figures)
UNSTABLE = re.compile(r"\b\d\.\de[+-]\d\d\b( \([a-z]+\))?")  # a round-off residual, e.g. 2.8e-16 (dx)
COLUMNS = "120"  # the terminal width examples are shown at (a pipe gets the same from ablab summary)


@dataclass(frozen=True)
class Example:
    page: str  # path relative to the repository root
    line: int  # 1-based line of the ``$`` in the page
    command: str  # as written after ``$``, comment removed
    expected: str | None  # the output shown; None when the page shows none

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def argv(self) -> list[str]:
        """Arguments after ``ablab`` (shell quoting and ``# comments`` as a shell reads them)."""
        return shlex.split(self.command, comments=True)[1:]


def fenced_blocks(text: str) -> list[tuple[int, str, list[str]]]:
    """(line number of the first content line, info string, lines) of every fenced code block."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i].strip())
        if not m:
            i += 1
            continue
        fence, info, start = m.group(1), m.group(2).strip(), i + 1
        j = start
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        blocks.append((start + 1, info, lines[start:j]))
        i = j + 1
    return blocks


def examples(path: Path) -> list[Example]:
    """Every ``$ ablab ...`` example of one Markdown file, in order."""
    out: list[Example] = []
    page = str(path.relative_to(ROOT))
    for first, info, lines in fenced_blocks(path.read_text()):
        if info and info.split()[0] not in ("", "console", "shell", "sh", "bash", "text"):
            continue  # toml, python, json: not a terminal transcript
        k = 0
        while k < len(lines):
            if not lines[k].startswith("$ "):
                k += 1
                continue
            line_no, command = first + k, lines[k][2:]
            while command.endswith("\\") and k + 1 < len(lines):  # a command continued on the next line
                k += 1
                command = command[:-1] + " " + lines[k].strip()
            k += 1
            shown = []
            while k < len(lines) and not lines[k].startswith("$ "):
                shown.append(lines[k])
                k += 1
            while shown and not shown[-1].strip():
                shown.pop()
            if command.split()[0] == "ablab":
                out.append(Example(page, line_no, command.strip(), "\n".join(shown) if shown else None))
    return out


def normalize(text: str) -> list[str]:
    out = []
    for line in text.strip("\n").splitlines():
        line, n = UNSTABLE.subn("<residual>", line.rstrip())
        out.append(re.sub(" +", " ", line) if n else line)
    return out


def matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is what ``expected`` shows, where a ``...`` line stands for any lines."""
    want, got = normalize(expected), normalize(actual)

    @functools.cache
    def match(i: int, j: int) -> bool:
        if i == len(want):
            return j == len(got)
        if want[i].strip() == "...":
            return any(match(i + 1, k) for k in range(j, len(got) + 1))
        return j < len(got) and same_line(want[i], got[j]) and match(i + 1, j + 1)

    return match(0, 0)


def same_line(want: str, got: str) -> bool:
    """Equal, or equal where ``want`` has ``...`` (which stands for any text within the line)."""
    if want == got:
        return True
    return "..." in want and re.fullmatch(".*".join(map(re.escape, want.split("..."))), got) is not None


def run(example: Example, cwd: Path | None = None) -> tuple[int, str]:
    """Run an example in-process; (exit code, stdout + stderr)."""
    import os

    from click.testing import CliRunner

    from ablab.cli import cli

    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner(env={"COLUMNS": COLUMNS}).invoke(cli, example.argv, prog_name="ablab")
    finally:
        os.chdir(old)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output
