"""``ablab check`` and ``ablab explain``: thin commands over ``ablab.reference`` (torch imported inside)."""

from __future__ import annotations

import glob
from typing import Any

import click

from ablab.cli.keys import flags
from ablab.errors import UserError


@click.command()
@click.option("-k", "--filter", "pattern", default=None, help="Only checks whose name contains this text.")
@click.option("--all", "show_all", is_flag=True, help="One row per check instead of one per layer family.")
@click.option("--no-fd", is_flag=True, help="Skip the finite-difference oracle (faster).")
def check(pattern: str | None, show_all: bool, no_fd: bool) -> None:
    """Check every NumPy reference layer against torch autograd (float64) and finite differences.

    Prints the largest scaled error, max|a-b| / max(1, max|b|), per layer family (or per check with
    --all); exits 1 if any check fails.

    \b
    Example:
      ablab check
      ablab check -k conv2d --all
    """
    from rich.console import Console
    from rich.table import Table

    from ablab.reference import checks

    cases = checks.list_checks("*" if pattern is None else f"*{glob.escape(pattern)}*")
    if not cases:
        families = sorted({c.family for c in checks.CHECKS.values()})
        raise UserError(f"--filter {pattern!r}: no check matches; families: {', '.join(families)}")
    results = checks.run(cases, fd=not no_fd)

    def worst(d: dict[str, float]) -> tuple[float, str]:
        return max(((v, k) for k, v in d.items()), default=(0.0, ""))

    table = Table(title="ablab check: NumPy reference vs torch autograd (float64) and finite differences")
    table.add_column("check" if show_all else "family")
    if not show_all:
        table.add_column("cases", justify="right")
    for col in ("forward", "grad vs autograd", "grad vs finite diff", "status"):
        table.add_column(col, justify="right")
    groups: dict[str, list[Any]] = {}
    for case, res in results:
        groups.setdefault(case.name if show_all else case.family, []).append(res)
    for name, rs in groups.items():
        fwd = max(r.forward for r in rs)
        ag, ag_k = max(worst(r.autograd) for r in rs)
        fd, fd_k = max(worst(r.fd) for r in rs)
        ok = all(r.ok for r in rs)
        cells = [name] + ([] if show_all else [str(len(rs))])
        cells += [f"{fwd:.1e}", f"{ag:.1e} (d{ag_k})" if ag_k else "-", f"{fd:.1e} (d{fd_k})" if fd_k else "-",
                  "[green]ok[/green]" if ok else "[red]FAILED[/red]"]
        table.add_row(*cells)
    console = Console()
    console.print(table)
    failed = [res for _, res in results if not res.ok]
    console.print(f"{len(results)} checks, {len(failed)} failed; tolerances: autograd 1e-10, "
                  f"finite differences 1e-6, model trajectory 1e-8.")
    for res in failed:
        console.print(f"[red]FAILED[/red] {res.describe()}")
    if failed:
        raise SystemExit(1)


# -------------------------------------------------------------------------------------------- explain


def _format_option(f: Any) -> Any:
    f = click.option("--digits", default=6, show_default=True, type=click.IntRange(1, 17),
                     help="Significant digits printed.")(f)
    return click.option("--format", "fmt", type=click.Choice(["text", "markdown"]), default="text",
                        show_default=True, help="Plain text, or Markdown with LaTeX.")(f)


def _file_option(f: Any) -> Any:
    return click.option("--file", "file", type=click.Path(dir_okay=False), default=None,
                        help="A JSON file with the same keys as the flags (flags win).")(f)


def _run(example: str, fmt: str, digits: int, file: str | None = None, **values: Any) -> None:
    """Run one worked example (``ablab.reference.explain.run_example``) and print it."""
    from ablab.reference.explain import run_example

    _emit(run_example(example, file, digits, **values), fmt)


def _emit(e: Any, fmt: str) -> None:
    click.echo(e.render(fmt), nl=False)
    if not e.ok:
        raise SystemExit(1)


# library keys -> this command's flags, for error messages
EXPLAIN_FLAGS = {"layer": "--layer", "input": "--input", "input_shape": "--input", "sizes": "--sizes", "x": "--x",
                 "weight": "--weight", "format": "--format", "max_entries": "--max-entries", "gamma": "--gamma",
                 "beta": "--beta", "dy": "--dy", "eps": "--eps", "momentum": "--momentum", "lr": "--lr",
                 "seed": "--seed", "slope": "--slope"}


class _ExplainGroup(click.Group):
    """Runs the subcommand with library keys in errors spelled as its flags."""

    def invoke(self, ctx: click.Context) -> Any:
        with flags(EXPLAIN_FLAGS):
            return super().invoke(ctx)


@click.group(cls=_ExplainGroup)
def explain() -> None:
    """Worked examples with every intermediate value, checked against torch autograd.

    Each subcommand runs a built-in example without arguments; give your own numbers with flags
    or --file (JSON). --format markdown prints LaTeX for a report.

    \b
    Example:
      ablab explain bn-backward --x "1,2;3,4;5,7" --dy "1,0;0,1;1,1"
      ablab explain conv-matrix --layer "conv(1,2,s=2,p=1)" --input 1x3x3
      ablab explain activation tanh --format markdown
    """


@explain.command("bn-forward")
@click.option("--x", default=None, help="Batch matrix N x D: rows by ';', values by ','.")
@click.option("--gamma", default=None, help="Scale, one value per column.")
@click.option("--beta", default=None, help="Shift, one value per column.")
@click.option("--eps", type=float, default=None, help="Epsilon (default 1e-5; 0 if every feature varies).")
@click.option("--momentum", type=float, default=None, help="Running-statistics momentum (default 0.1).")
@_file_option
@_format_option
def bn_forward_cmd(fmt: str, digits: int, file: str | None, **flags: Any) -> None:
    """Batch norm forward: mu, var, x_hat, y and running statistics.

    \b
    Example:
      ablab explain bn-forward --x "1,2;3,4;5,9" --gamma "1,2" --beta "0,1"
    """
    _run("bn-forward", fmt, digits, file, **flags)


@explain.command("bn-backward")
@click.option("--x", default=None, help="Batch matrix N x D: rows by ';', values by ','.")
@click.option("--gamma", default=None, help="Scale, one value per column.")
@click.option("--beta", default=None, help="Shift, one value per column.")
@click.option("--dy", default=None, help="Upstream gradient dL/dy, same shape as x.")
@click.option("--eps", type=float, default=None, help="Epsilon (default 1e-5; 0 if every feature varies).")
@_file_option
@_format_option
def bn_backward_cmd(fmt: str, digits: int, file: str | None, **flags: Any) -> None:
    """Batch norm backward: dgamma, dbeta, dx_hat, dvar, dmu, dx, each checked against autograd.

    \b
    Example:
      ablab explain bn-backward --x "1,2;3,4;5,9" --dy "0.1,0;0,0.2;-0.1,0.1"
    """
    _run("bn-backward", fmt, digits, file, **flags)


@explain.command("conv-matrix")
@click.option("--layer", default=None, help="One conv layer in the spec grammar (default 'conv(1,2)').")
@click.option("--input", "input_", default=None, help="Input sample shape CxHxW or CxL (default 1x3x3).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the small-integer w, x, g.")
@click.option("--max-entries", type=click.IntRange(min=1), default=None,
              help="Refuse a matrix A with more entries than this (default 1,000,000).")
@_file_option
@_format_option
def conv_matrix_cmd(fmt: str, digits: int, file: str | None, layer: str | None, input_: str | None,
                    seed: int, max_entries: int | None) -> None:
    """Convolution as y = A x with symbolic weights; backward = A^T = rotated-kernel convolution.

    The JSON file may give layer, input, and the numbers w, x, g (nested lists).

    \b
    Example:
      ablab explain conv-matrix --layer "conv(2,2,s=2,p=(0,1))" --input 1x3x4
    """
    _run("conv-matrix", fmt, digits, file, layer=layer, input=input_, seed=seed, max_entries=max_entries)


@explain.command("graph")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--weight", default=None, help="The weight whose gradient is walked through (default: the first).")
@click.option("--lr", type=float, default=None, help="Also show one gradient-descent step with this rate.")
@_format_option
def graph_cmd(fmt: str, digits: int, file: str | None, weight: str | None, lr: float | None) -> None:
    """Backprop by hand through a small scalar network (a graph file; default: Mazur's 2-2-2 example).

    The file lists 'input|weight|target NAME = NUMBER' and '[loss] NAME = FORMULA' lines (or the same
    as .json); see ablab.reference.autodiff.

    \b
    Example:
      ablab explain graph --weight w5 --lr 0.5
      ablab explain graph my_net.graph --weight w1 --format markdown
    """
    _run("graph", fmt, digits, graph=file, weight=weight, lr=lr)


@explain.command("collapse")
@click.option("--sizes", default=None, help="Widths input,hidden...,output (default 3,4,2); small random integers.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random integer weights.")
@_file_option
@_format_option
def collapse_cmd(fmt: str, digits: int, file: str | None, sizes: str | None, seed: int) -> None:
    """Stacked linear layers with identity activations reduced to one affine map W x + b.

    The JSON file gives {"layers": [{"w": [[...]], "b": [...]}, ...]}.

    \b
    Example:
      ablab explain collapse --sizes 4,2,3
    """
    _run("collapse", fmt, digits, file, sizes=sizes, seed=seed)


@explain.command("activation")
@click.argument("name")
@click.option("--x", default=None, help="Points, comma-separated (default -2,-1,-0.5,0.5,1,2).")
@click.option("--slope", type=float, default=0.01, show_default=True, help="Negative slope of leaky_relu.")
@_format_option
def activation_cmd(fmt: str, digits: int, name: str, x: str | None, slope: float) -> None:
    """Value, derivative and identities of an activation, checked numerically.

    NAME is one of sigmoid, tanh, relu, leaky_relu, gelu, softplus, softmax (softmax: --x is the
    vector z and the Jacobian is shown).

    \b
    Example:
      ablab explain activation sigmoid --x "-1,0,1"
    """
    _run("activation", fmt, digits, name=name, x=x, slope=slope)
