"""The check registry (``CHECKS``), its runner, and the helpers every case module uses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ablab.errors import UserError
from ablab.reference.gradcheck import CheckResult, check
from ablab.registry import Registry


@dataclass(frozen=True)
class Case:
    """One registered check: a family (``conv2d``), a label naming its parameters, and the runner."""

    family: str
    label: str
    run: Callable[[], CheckResult]

    @property
    def name(self) -> str:
        return f"{self.family}[{self.label}]"


CHECKS: Registry[Case] = Registry("check", UserError, sort=False)


def register(family: str, label: str) -> Callable[[Callable[[], CheckResult]], Callable[[], CheckResult]]:
    """Register the decorated function as the check ``family[label]``."""

    def deco(fn: Callable[[], CheckResult]) -> Callable[[], CheckResult]:
        case = Case(family, label, fn)
        CHECKS.register(case.name, case)
        return fn

    return deco


def list_checks(pattern: str = "*") -> list[Case]:
    """Registered checks whose name matches the glob ``pattern``, in registration order."""
    return [CHECKS[n] for n in CHECKS.list(pattern)]


def run(cases: list[Case] | None = None, fd: bool = True) -> list[tuple[Case, CheckResult]]:
    """Run the given cases (all by default); ``fd=False`` skips the finite-difference oracle."""
    out = []
    for case in cases if cases is not None else CHECKS.values():
        res = case.run() if fd else _FD_OFF.call(case)
        res.name = case.name
        out.append((case, res))
    return out


class _FdSwitch:
    """Lets ``run(fd=False)`` turn finite differences off for every ``check`` call a case makes."""

    enabled = True

    def call(self, case: Case) -> CheckResult:
        self.enabled = False
        try:
            return case.run()
        finally:
            self.enabled = True


_FD_OFF = _FdSwitch()


def _check(name: str, fwd: Any, bwd: Any, torch_fn: Any, inputs: dict[str, Any], wrt: list[str],
           **kw: Any) -> CheckResult:
    return check(name, fwd, bwd, torch_fn, inputs, wrt, fd=_FD_OFF.enabled, **kw)


def _rng(label: str) -> np.random.Generator:
    """A generator seeded by the case's label: stable across runs and Python hash seeds."""
    return np.random.default_rng(sum(i * ord(ch) for i, ch in enumerate(label, 1)))


def _fmt_pad(p: Any) -> str:
    return str(p).replace(" ", "")
