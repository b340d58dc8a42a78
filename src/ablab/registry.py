"""One registry helper for every registry in ablab: layers, presets, variants, datasets, checks.

A ``Registry`` is a name -> entry dict with aliases, a glob ``list`` and a ``get`` whose error says
"did you mean ...?" (timm's ``register_model`` / ``list_models('resnet*')`` / ``create_model``)::

    VARIANTS = Registry("variant", ConfigError, sort=False)
    VARIANTS.register("dropout", Variant(...))
    VARIANTS.list("l2*")        # ['l2', 'l2-penalty']
    VARIANTS.get("dropuot")     # ConfigError: unknown variant 'dropuot'; did you mean 'dropout'? (known: ...)

It also behaves like the plain dict it replaces (``reg[name]``, ``name in reg``, ``reg[name] = e``).
"""

from __future__ import annotations

import builtins
import difflib
import fnmatch
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from ablab.errors import UserError

T = TypeVar("T")


def did_you_mean(name: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""`` when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=cutoff)
    return f"; did you mean '{close[0]}'?" if close else ""


class Registry(Generic[T]):
    """Named entries of one kind (``what``: "layer", "variant", ...); ``error`` is raised by ``get``.

    ``normalize`` maps a looked-up name to its key (e.g. ``str.lower``); ``sort=False`` lists in
    registration order; ``cutoff`` is how close a name must be to be suggested (0..1)."""

    def __init__(self, what: str, error: type[Exception] = UserError, *, sort: bool = True, cutoff: float = 0.6,
                 normalize: Callable[[str], str] | None = None):
        self.what, self.error, self.sort, self.cutoff = what, error, sort, cutoff
        self.normalize = normalize or (lambda s: s)
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    # ------------------------------------------------------------------------------ registering
    def register(self, name: str, entry: T, aliases: Iterable[str] = ()) -> T:
        """Add (or replace) ``entry`` under ``name`` and its ``aliases``; returns the entry."""
        self._entries[name] = entry
        for a in aliases:
            self._aliases[a] = name
        return entry

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)
        for a in [a for a, n in self._aliases.items() if n == name]:
            del self._aliases[a]

    # -------------------------------------------------------------------------------- looking up
    def key(self, name: str) -> str | None:
        """The registered name ``name`` stands for (itself or an alias's target), or ``None``."""
        n = self.normalize(name)
        n = self._aliases.get(n, n)
        return n if n in self._entries else None

    def get(self, name: str, shown: str | None = None) -> T:
        """The entry of ``name``; else ``error("unknown <what> '<shown>'; did you mean ...? (known: ...)")``."""
        k = self.key(name)
        if k is None:
            raise self.error(self.unknown(name, shown))
        return self._entries[k]

    def unknown(self, name: str, shown: str | None = None) -> str:
        """The message for a name that is not registered (for callers raising their own error)."""
        hint = did_you_mean(self.normalize(name), self.list(aliases=True), self.cutoff)
        return f"unknown {self.what} '{shown if shown is not None else name}'{hint} (known: {', '.join(self.list())})"

    def list(self, pattern: str = "*", aliases: bool = False) -> list[str]:
        """Registered names (and aliases, if asked) matching the glob ``pattern`` (case-insensitive)."""
        names = [*self._entries, *(self._aliases if aliases else ())]
        if self.sort:
            names.sort()
        pat = pattern.lower()
        return [n for n in names if fnmatch.fnmatchcase(n.lower(), pat)]

    def items(self) -> builtins.list[tuple[str, T]]:
        return [(n, self._entries[n]) for n in self.list()]

    def values(self) -> builtins.list[T]:
        return [self._entries[n] for n in self.list()]

    def aliases(self) -> dict[str, str]:
        return dict(self._aliases)

    # ------------------------------------------------------------------------ dict behaviour
    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __setitem__(self, name: str, entry: T) -> None:
        self._entries[name] = entry

    def __delitem__(self, name: str) -> None:
        if name not in self._entries:
            raise KeyError(name)
        self.unregister(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.key(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._entries)

    def pop(self, name: str, default: T | None = None) -> T | None:
        entry = self._entries.get(name, default)
        self.unregister(name)
        return entry

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {len(self)} entries)"
