"""click options generated from TrainConfig's field metadata: one source of defaults, help and choices.

Every scalar field of :class:`ablab.train.config.TrainConfig` becomes ``--field-name`` (or the field's
``flag``) with the config's default, help text and choices; a boolean that defaults to false is a flag,
one that defaults to true gets ``--no-...``. Library errors name config keys (``epochs: expected ...``);
:func:`flag_error` rewrites the key into the option the user typed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, Field
from typing import Any, TypeVar

import click

from ablab.errors import UserError
from ablab.train.config import FIELDS, ConfigError

F = TypeVar("F", bound=Callable[..., Any])

_SCALARS: dict[str, Any] = {"str": click.STRING, "int": click.INT, "float": click.FLOAT, "bool": click.BOOL}


def field_kind(f: Field[Any]) -> tuple[str, bool]:
    """(base type name, optional) of a field's annotation, e.g. ("int", True) for ``int | None``."""
    ann = str(f.type).replace(" ", "")
    return ann.removesuffix("|None"), ann.endswith("|None")


def flag_of(name: str) -> str:
    """The CLI option of a config key: its ``flag`` metadata or ``--key-with-dashes``."""
    return str(FIELDS[name].metadata.get("flag", "--" + name.replace("_", "-")))


def option_fields(skip: tuple[str, ...] = ()) -> list[str]:
    """The config keys that get an option: scalar fields (str, int, float, bool), minus ``skip``."""
    return [k for k, f in FIELDS.items() if k not in skip and field_kind(f)[0] in _SCALARS]


def config_option(name: str) -> Callable[[F], F]:
    """The click option of one TrainConfig field."""
    f = FIELDS[name]
    base, _ = field_kind(f)
    default = None if f.default is MISSING else f.default
    flag = flag_of(name)
    help_text = f.metadata.get("help", "")
    if base == "bool":
        if default:
            return click.option(f"{flag}/--no-{flag.removeprefix('--')}", name, default=True, show_default=True,
                                help=help_text)
        return click.option(flag, name, is_flag=True, default=False, help=help_text)
    choices = f.metadata.get("choices")
    kind = click.Choice(list(choices)) if choices else _SCALARS[base]
    return click.option(flag, name, type=kind, default=default, show_default=default is not None, help=help_text)


def config_options(skip: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Decorate a command with :func:`config_option` for every field of :func:`option_fields`, in the
    config's order; the command receives them as keyword arguments named like the fields."""

    def decorate(fn: F) -> F:
        for name in reversed(option_fields(skip)):
            fn = config_option(name)(fn)
        return fn

    return decorate


def flag_error(e: UserError) -> ConfigError:
    """A config error whose message starts with ``key:`` restated with the option (``--key:``)."""
    if e.key in FIELDS:
        return ConfigError(e.detail, key=flag_of(e.key))
    msg = str(e)
    key, sep, rest = msg.partition(":")
    if sep and key in FIELDS:  # an error raised with the key spelled in its message
        return ConfigError(f"{flag_of(key)}:{rest}")
    return ConfigError(msg)
