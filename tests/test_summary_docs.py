"""Every complete ``$ ablab summary ...`` example in docs/summary.md is re-run and must print exactly what the
docs show, so the README's numbers cannot drift from the code."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from ablab.cli import cli

DOC = Path(__file__).resolve().parents[1] / "docs" / "summary.md"


def examples() -> list[tuple[str, str]]:
    """(command, expected output) for every example whose output is shown in full."""
    out = []
    for block in re.findall(r"```\n(.*?)```", DOC.read_text(), flags=re.S):
        for part in re.split(r"^(?=\$ )", block, flags=re.M):
            if not part.startswith("$ ablab summary"):
                continue
            command, _, expected = part.partition("\n")
            if expected.startswith("..."):
                continue  # an excerpt
            out.append((command[2:], expected))
    return out


def normalize(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def test_the_docs_have_the_three_examples() -> None:
    commands = [c for c, _ in examples()]
    assert "ablab summary lenet5 --input 1x28x28" in commands
    assert any("--input 3x200x300 --batch 50" in c and "pad=same" in c for c in commands)
    assert any(c.startswith("ablab summary mlp:") for c in commands)


@pytest.mark.parametrize(("command", "expected"), examples())
def test_doc_example_output_is_real(command: str, expected: str) -> None:
    result = CliRunner().invoke(cli, shlex.split(command)[1:])
    assert normalize(result.output) == normalize(expected)
