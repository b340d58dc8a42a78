"""The ``ablab`` command. Commands are thin: parse, call one library function, format.

Each command lives in its own module and is imported only when it runs, so ``ablab --help`` and
``ablab summary`` on a spec stay instant (no torch import).
"""

from __future__ import annotations

import importlib
import sqlite3
import sys
import warnings
from typing import Any

import click

from ablab.errors import UserError
from ablab.writing import os_error_message, sqlite_error_message

# command name -> "module:attribute"; each module imports its heavy dependencies inside the command
COMMANDS: dict[str, tuple[str, str]] = {
    "summary": ("ablab.cli.summary:summary", "Size up a network: shapes, parameters, MACs/FLOPs, memory."),
    "data": ("ablab.cli.data:data", "Datasets: list, info, fetch, verify."),
    "train": ("ablab.cli.train:train", "Train one model on a dataset and write metrics + checkpoint."),
    "eval": ("ablab.cli.train:eval_cmd", "Evaluate a checkpoint on its dataset's test split."),
    "study": ("ablab.cli.study:study", "Run, report and compare multi-seed ablation studies."),
    "runs": ("ablab.cli.study:runs", "List runs in a study's store."),
    "check": ("ablab.cli.check:check", "Check the NumPy reference layers against autograd."),
    "explain": ("ablab.cli.check:explain", "Worked examples with every intermediate value."),
}


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    click.echo(f"warning: {message}", err=True)


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target = COMMANDS[cmd_name][0]
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
        except (ImportError, AttributeError) as e:
            raise click.ClickException(f"command '{cmd_name}' is not available: {e}") from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # help text from the table above, so --help imports no command module
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])

    def invoke(self, ctx: click.Context) -> Any:
        """The one error path: a user error, an operating-system error (read-only folder, full disk,
        missing file) or an SQLite error becomes one ``error:`` line and exit code 2, no traceback.
        Warnings (ablab's and its libraries') print as one ``warning:`` line each."""
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return super().invoke(ctx)
        except UserError as e:
            message = str(e)
        except BrokenPipeError:  # `ablab runs ls | head`: the reader left; nothing to say
            sys.stderr.close()
            ctx.exit(1)
        except OSError as e:
            message = os_error_message(e)
        except sqlite3.Error as e:
            message = sqlite_error_message(e)
        except RecursionError:
            message = "input nested too deeply to read (recursion limit); flatten it"
        click.echo(f"error: {message}", err=True)
        ctx.exit(2)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ablab")
def cli() -> None:
    """ablab — size up, check the math of, and compare small neural networks.

    \b
    Example:
      ablab summary lenet5 --input 1x28x28
      ablab study run fashion-regularization
    """


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv, prog_name="ablab")


if __name__ == "__main__":
    main(sys.argv[1:])
