"""Every ``ablab`` command and sub-command has help, an ``Example:`` that parses, and a docs page.

The commands are found by walking the CLI itself (the lazy command table and every group under it), so a
command added later is held to the same rules without being registered here.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ablab.cli import COMMANDS, cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^\s*(```+|~~~+)")


def walk(cmd: click.Command, path: tuple[str, ...], parent: click.Context | None = None):
    """(path, command) for ``cmd`` and every command below it, parents first."""
    ctx = click.Context(cmd, info_name=path[-1], parent=parent)
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            assert sub is not None, f"{' '.join(path)} lists {name!r} but cannot load it"
            yield from walk(sub, (*path, name), ctx)


ALL = list(walk(cli, ("ablab",)))
IDS = [" ".join(p) for p, _ in ALL]


def example_lines(help_text: str) -> list[str]:
    """The command lines of the ``Example:`` section (indented lines after it; ``\\`` continues a line)."""
    lines = help_text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() in ("Example:", "Examples:")]
    if not starts:
        return []
    out: list[str] = []
    for line in lines[starts[0] + 1:]:
        if not line.strip():
            if out:
                break
            continue
        if out and out[-1].endswith("\\"):
            out[-1] = out[-1][:-1].rstrip() + " " + line.strip()
        else:
            out.append(line.strip())
    return out


def given(value: object) -> bool:
    """Whether the parser got a value for an argument (a missing one is click's UNSET marker or empty)."""
    return isinstance(value, str) or (isinstance(value, list | tuple) and len(value) > 0)


def parse_example(argv: list[str]) -> tuple[str, ...]:
    """Parse an example's arguments the way click will, without running anything; the command path reached.

    Options must exist and get their values; positional arguments must fit the command's arguments. Values
    are not converted (a path in an example need not exist here)."""
    cmd: click.Command = cli
    path: tuple[str, ...] = ("ablab",)
    parent = None
    args = list(argv)
    while True:
        ctx = click.Context(cmd, info_name=path[-1], parent=parent)
        values, rest, _ = cmd.make_parser(ctx).parse_args(args)  # positional arguments land in values
        if not isinstance(cmd, click.Group):
            assert not rest, f"extra arguments {rest}"
            missing = [p.name for p in cmd.params if isinstance(p, click.Argument) and p.required
                       and not given(values.get(p.name))]
            assert not missing, f"missing argument(s) {missing}"
            return path
        if not rest:
            return path
        sub = cmd.get_command(ctx, rest[0])
        assert sub is not None, f"{' '.join(path)} has no sub-command {rest[0]!r}"
        cmd, path, parent, args = sub, (*path, rest[0]), ctx, rest[1:]


def docs_mentions() -> str:
    """The text of every heading and every fenced code block line of docs/, one per line."""
    out = []
    for page in sorted(DOCS.rglob("*.md")):
        inside = False
        for line in page.read_text().splitlines():
            if FENCE.match(line):
                inside = not inside
            elif inside or line.startswith("#"):
                out.append(line.removeprefix("$ "))
    return "\n".join(out)


MENTIONS = docs_mentions()


def test_the_walk_finds_every_command_of_the_table() -> None:
    top = {p[1] for p, _ in ALL if len(p) == 2}
    assert top == set(COMMANDS)
    assert len(ALL) > len(COMMANDS) + 10  # the groups' sub-commands were found too


@pytest.mark.parametrize(("path", "cmd"), ALL, ids=IDS)
def test_command_has_help_with_an_example(path: tuple[str, ...], cmd: click.Command) -> None:
    name = " ".join(path)
    result = CliRunner().invoke(cli, [*path[1:], "--help"], prog_name="ablab")
    assert result.exit_code == 0, result.output
    assert f"Usage: {name}" in result.output
    assert cmd.help and len(cmd.help.split("\n")[0].strip()) > 10, f"{name}: no help text"
    examples = example_lines(cmd.help)
    assert examples, f"{name}: its help has no 'Example:' section (add one to its docstring)"
    reached = []
    for line in examples:
        argv = shlex.split(line, comments=True)
        assert argv[0] == "ablab", f"{name}: example {line!r} does not start with 'ablab'"
        try:
            reached.append(parse_example(argv[1:]))
        except (click.UsageError, AssertionError) as e:
            pytest.fail(f"{name}: example {line!r} does not parse: {e}")
    assert any(r[:len(path)] == path for r in reached), f"{name}: no example runs {name}: {examples}"


@pytest.mark.parametrize("path", [p for p, _ in ALL], ids=IDS)
def test_command_has_a_docs_page(path: tuple[str, ...]) -> None:
    name = " ".join(path)
    assert re.search(rf"(^|[\s`(]){re.escape(name)}($|[\s`)])", MENTIONS, flags=re.M), (
        f"`{name}` appears in no heading or code block of docs/*.md: document it on the page of its job")


def test_parse_example_rejects_what_click_would() -> None:
    assert parse_example(["summary", "lenet5", "--input", "1x28x28"]) == ("ablab", "summary")
    for bad in (["summary", "lenet5", "--no-such-flag"], ["summary"], ["summary", "a", "b"],
                ["data", "nosuch"], ["summary", "lenet5", "--batch"]):
        with pytest.raises((click.UsageError, AssertionError)):
            parse_example(bad)
