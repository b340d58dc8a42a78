"""Building your own model from its reference: arguments typed against the constructor's signature, the call,
and a zero-batch check that the output fits the dataset — before any training time is spent.

A value means what it says. ``--model-arg use_batch_norm=False`` is the boolean false, and a study file's
``use_batch_norm = "false"`` (a quoted string) is refused, not passed on to a constructor that would read
any non-empty string as true. Each argument is checked against its parameter's annotation, or against
its default's type when it has no annotation:
=========================  =====================================================================
parameter                  accepted
=========================  =====================================================================
``bool``                   ``true`` / ``false`` (TOML booleans; on the command line any case)
``int``                    an integer (not a float, not a boolean, not a string of digits)
``float``                  an integer or a float (not a boolean)
``str``                    a string
``X | None``               ``X``, or ``none``/``null`` on the command line
``Literal[...]``           one of the listed values
``list[X]`` / ``tuple``    a list (a tuple parameter gets a tuple), each item checked as ``X``
anything else              the value as written
=========================  =====================================================================

:func:`parse_assignments` is the one ``KEY=VALUE`` parser, for ``--model-arg`` and ``--set``.

Importing this module does not import torch.
"""

from __future__ import annotations

import difflib
import inspect
import re
import tomllib
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from ablab.errors import UserError
from ablab.models.resolve import ModelRefError, load_reference, shown

_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
MAX_DIGITS = 4300  # Python's own limit on int <-> str conversions (sys.int_info.default_max_str_digits)


def parse_value(raw: str) -> Any:
    """One command-line value: a TOML literal (``64``, ``0.5``, ``true``, ``"text"``, ``[3, 5]``); the bare
    words ``true``/``false`` in any case as booleans, ``none``/``null`` as None, any other bare word
    (``relu``) as a string. Raises ValueError for anything else."""
    raw = raw.strip()
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    if raw.lower() in ("none", "null"):
        return None
    if len(raw) > MAX_DIGITS and raw.lstrip("+-").isdigit():
        raise ValueError(f"an integer of {len(raw)} digits (at most {MAX_DIGITS})")
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        if _BARE_WORD.fullmatch(raw):
            return raw
        raise ValueError("not a TOML value (true, 64, 0.5, \"text\", [1, 2])") from None


def parse_assignments(items: tuple[str, ...] | list[str], flag: str, error: type[UserError] = ModelRefError
                      ) -> dict[str, Any]:
    """``KEY=VALUE`` pairs (``flag`` names the option in errors); values by :func:`parse_value`. Later pairs
    win. The one parser of ``--model-arg`` and ``--set``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise error(f"{flag} {item[:80]}: expected KEY=VALUE with KEY a name, e.g. use_dropout=true")
        try:
            out[key] = parse_value(raw)
        except ValueError as e:
            raise error(f"{flag} {key}={raw[:40]}{'...' if len(raw) > 40 else ''}: {e}") from None
    return out


def parse_model_args(items: tuple[str, ...] | list[str], flag: str = "--model-arg") -> dict[str, Any]:
    """``--model-arg KEY=VALUE`` pairs (see :func:`parse_assignments`)."""
    return parse_assignments(items, flag)


# ------------------------------------------------------------------------------------- typing


def _hints(obj: Any) -> dict[str, Any]:
    """The evaluated annotations of a class's ``__init__`` or a function ({} when they cannot be read)."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        return typing.get_type_hints(target)
    except Exception:  # a forward reference that does not resolve, a typo in an annotation: check by default
        return {}


def _fits(value: Any, kind: Any) -> tuple[bool, Any]:
    """(does ``value`` mean a ``kind``, the value to pass); unknown kinds accept the value as written."""
    origin = get_origin(kind)
    if kind is Any or kind is inspect.Parameter.empty:
        return True, value
    if kind is type(None):
        return value is None, value
    if kind is bool:
        return isinstance(value, bool), value
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool), value
    if kind is str:
        return isinstance(value, str), value
    if origin in (Union, types.UnionType):
        for option in get_args(kind):
            ok, v = _fits(value, option)
            if ok:
                return True, v
        return False, value
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in get_args(kind)), value
    if origin in (list, tuple) or kind in (list, tuple):
        if not isinstance(value, list | tuple):
            return False, value
        inner = get_args(kind)
        item_kind = inner[0] if inner and (origin is list or (len(inner) == 2 and inner[1] is Ellipsis)) else Any
        items = []
        for x in value:
            ok, v = _fits(x, item_kind)
            if not ok:
                return False, value
            items.append(v)
        return True, tuple(items) if (origin or kind) is tuple else items
    return True, value


def _spelling(kind: Any) -> str:
    if kind is bool:
        return "true or false"
    if kind is int:
        return "an integer"
    if kind is float:
        return "a number"
    if kind is str:
        return "a string (quoted in TOML)"
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(kind))
    return getattr(kind, "__name__", None) or str(kind).replace("typing.", "")


def _shown_value(value: Any) -> str:
    kind = "string" if isinstance(value, str) else type(value).__name__
    text = repr(value)
    return f"the {kind} {text[:60]}{'...' if len(text) > 60 else ''}"


def typed_args(text: str, obj: Any, args: dict[str, Any]) -> dict[str, Any]:
    """``args`` checked against ``obj``'s signature (see the module docstring); a value that does not mean
    what its parameter takes is a ModelRefError naming both."""
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return dict(args)
    hints = _hints(obj)
    out = {}
    for key, value in args.items():
        p = params.get(key)
        if p is None:  # taken by **kwargs (an unknown name was refused by the bind before)
            out[key] = value
            continue
        kind = hints.get(key, p.annotation if not isinstance(p.annotation, str) else inspect.Parameter.empty)
        if kind is inspect.Parameter.empty and p.default is not inspect.Parameter.empty and p.default is not None:
            kind = type(p.default) if type(p.default) in (bool, int, float, str) else Any
        ok, v = _fits(value, kind)
        if not ok:
            name = getattr(obj, "__name__", text)
            raise ModelRefError(f"{shown(text)}: {name}({key}=...) takes {_spelling(kind)}, got {_shown_value(value)}"
                                + ("; write true or false, unquoted" if kind is bool else ""))
        out[key] = v
    return out


# ------------------------------------------------------------------------------------- building


def describe(text: str, args: dict[str, Any] | None = None) -> str:
    """``mymodel.py:LeNet5V1(use_dropout=True)``: a reference and its arguments in one line."""
    inner = ", ".join(f"{k}={v!r}" for k, v in (args or {}).items())
    return f"{shown(text)}({inner})"


def instantiate(text: str, args: dict[str, Any] | None = None, *, forbid: Any = None) -> Any:
    """Import the reference, type ``args`` against its signature and call it: a fresh ``nn.Module`` (seed
    torch before calling)."""
    from torch import nn

    args = dict(args or {})
    obj = load_reference(text, forbid=forbid)
    name = getattr(obj, "__name__", text)
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        try:
            sig.bind(**args)
        except TypeError as e:
            raise ModelRefError(f"{shown(text)}: {_bind_problem(name, sig, args, e)}") from None
        args = typed_args(text, obj, args)
    try:
        model = obj(**args)
    except SystemExit as e:  # the user's constructor tried to end the process: a failure, said as one
        raise ModelRefError(f"{shown(text)}: {name}(...) called sys.exit({e.code!r})") from None
    except Exception as e:  # the constructor itself refused (e.g. a ValueError on a bad width)
        inner = ", ".join(f"{k}={v!r}" for k, v in args.items())
        raise ModelRefError(f"{shown(text)}: {name}({inner}) raised {type(e).__name__}: {e}") from None
    if not isinstance(model, nn.Module):
        raise ModelRefError(f"{shown(text)}: {name}(...) returned an object of type {type(model).__name__}, "
                            "not an nn.Module")
    return model


def _bind_problem(name: str, sig: inspect.Signature, args: dict[str, Any], err: TypeError) -> str:
    params = sig.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return f"{name} rejected the arguments {sorted(args)}: {err}"
    accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [k for k in args if k not in accepted]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, accepted, n=1)
            hints.append(f"'{k}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        takes = ", ".join(accepted) if accepted else "no arguments"
        return f"{name} does not accept {', '.join(hints)}; it takes: {takes}"
    missing = [n for n, p in params.items() if p.default is p.empty and p.kind in
               (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in args]
    if missing:
        return f"{name} needs the argument(s) {', '.join(missing)}: give them with --model-arg KEY=VALUE / model_args"
    return f"{name} rejected the arguments {sorted(args)}: {err}"


def check_output(model: Any, text: str, input_shape: tuple[int, ...], num_classes: int, dataset: str) -> None:
    """Run a zero batch through ``model`` (eval mode, no grad) and refuse an output that is not
    (batch, num_classes) logits — before any training time is spent."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            out = model(torch.zeros(2, *input_shape))
    except SystemExit as e:
        raise ModelRefError(f"{shown(text)}: the model's forward called sys.exit({e.code!r})") from None
    except Exception as e:
        shape = "x".join(map(str, input_shape))
        raise ModelRefError(f"{shown(text)}: the model does not run on {dataset}'s input {shape} "
                            f"({type(e).__name__}: {e})") from None
    finally:
        model.train(was_training)
    _check_logits(out, text, num_classes, dataset)
    _check_training_step(model, text, input_shape, num_classes)


def _check_logits(out: Any, text: str, num_classes: int, dataset: str, batch: int = 2) -> None:
    import torch

    if not isinstance(out, torch.Tensor):
        raise ModelRefError(f"{shown(text)}: forward returned a {type(out).__name__}; ablab trains on a tensor of "
                            f"logits of shape (batch, {num_classes})")
    if out.dim() >= 1 and out.shape[0] != batch:
        raise ModelRefError(f"{shown(text)}: forward returned {out.shape[0]} row(s) for a batch of {batch}: the first "
                            "axis of the output must be the batch (one row of logits per sample)")
    got = tuple(out.shape[1:])
    if out.dim() != 2 or got != (num_classes,):
        raise ModelRefError(f"{shown(text)}: the model outputs {got} per sample but dataset {dataset} has "
                            f"{num_classes} classes: its last layer must output {num_classes} logits")
    if not out.is_floating_point():
        raise ModelRefError(f"{shown(text)}: forward returned {str(out.dtype).removeprefix('torch.')} logits; return "
                            "the raw float scores (no argmax, no rounding): cross-entropy needs them")


def _check_training_step(model: Any, text: str, input_shape: tuple[int, ...], num_classes: int) -> None:
    """One training step on a zero batch (train mode, forked RNG), then every parameter and buffer put back
    as it was: a model that cannot train is refused before any training time is spent."""
    import torch

    if not any(p.requires_grad for p in model.parameters()):
        raise ModelRefError(f"{shown(text)}: the model has no trainable parameters: there is nothing to train")
    saved = [(t, t.detach().clone()) for t in [*model.parameters(), *model.buffers()]]
    was_training = model.training
    model.train()
    try:
        with torch.random.fork_rng(devices=[]):
            out = model(torch.zeros(2, *input_shape))
            if isinstance(out, torch.Tensor) and out.is_floating_point() and out.grad_fn is None:
                raise ModelRefError(f"{shown(text)}: in training mode the output does not depend on the trainable "
                                    "parameters (a .detach(), .item() or NumPy round trip in forward?): no gradient "
                                    "can reach the weights")
            torch.nn.functional.cross_entropy(out, torch.zeros(2, dtype=torch.long)).backward()
    except ModelRefError:
        raise
    except SystemExit as e:
        raise ModelRefError(f"{shown(text)}: in training mode the model's forward called sys.exit({e.code!r})"
                            ) from None
    except Exception as e:
        raise ModelRefError(f"{shown(text)}: the model fails in training mode (dropout, batch norm or your own "
                            f"training-only path): {type(e).__name__}: {e}") from None
    finally:
        with torch.no_grad():
            for t, value in saved:
                t.copy_(value)
        for p in model.parameters():
            p.grad = None
        model.train(was_training)


__all__ = ["check_output", "describe", "instantiate", "parse_assignments", "parse_model_args", "parse_value",
           "typed_args"]
