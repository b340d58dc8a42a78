"""A study over the user's own training loop: a function ``train(run)`` or a script that prints JSON.

A study file whose ``[base]`` (or a variant, or a grid axis) sets ``train = "mytrain.py:train"`` or
``command = ["python", "train.py", "--lr", "{lr}"]`` runs that code instead of ablab's trainer. Every other
key under ``[base]``, ``[variants.x]`` and ``[grid]`` is the user's own and is passed through unchecked in
``run.config`` (or into ``{key}`` placeholders); ablab reads only ``train``, ``command``, ``epochs`` (for
progress), ``device`` and ``threads``. Seeds, metric, baseline and the rest of ``[study]`` keep their meaning.

The worker side lives here: :class:`Run` (what ``train(run)`` receives) and :func:`execute_own_run`, which
:func:`ablab.study.executor.execute_run` calls for such specs. Nothing here runs on import of a store or a
study folder: the function is imported only when a run executes (the user named it in the study file).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import random
import socket
import string
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ablab.errors import UserError
from ablab.jsonable import jsonable
from ablab.models.resolve import ModelRefError, is_reference, load_reference, reference_of

OWN_KEYS = ("train", "command")  # either one makes a config an own-loop config
STATE_FILE = "own-state.pt"  # what run.save_state writes into the run folder
STDERR_FILE = "stderr.txt"  # a script's stderr, kept with the run
STDOUT_FILE = "stdout.txt"  # a script's stdout lines that are not JSON metrics
METRIC_ALIASES = {"loss": "train_loss"}  # run.log(loss=...) is the training loss of the report
MAX_ERROR_CHARS = 4000  # the tail of a failed script's stderr kept in the store's error

IN_PROCESS: dict[str, Callable[..., Any]] = {}  # run_study(train=fn) of a nested function: name -> fn
IN_PROCESS_PREFIX = "<in-process>"


def is_own(config: dict[str, Any]) -> bool:
    """Whether a run's config dict runs the user's own loop (function or script)."""
    return any(config.get(k) is not None for k in OWN_KEYS)


@dataclass(frozen=True)
class OwnConfig:
    """The merged configuration of one own-loop run: a plain dict with the few methods the study machinery
    uses on a TrainConfig (hash, dict, replace, epochs, device)."""

    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.values)

    def replace(self, **changes: Any) -> OwnConfig:
        return OwnConfig({**self.values, **changes})

    def config_hash(self) -> str:
        text = json.dumps(jsonable(self.values), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def epochs(self) -> int:
        """The ``epochs`` key when the study sets one (progress bars count with it), else 1."""
        e = self.values.get("epochs")
        return e if isinstance(e, int) and not isinstance(e, bool) and e > 0 else 1

    @property
    def device(self) -> str:
        d = self.values.get("device", "cpu")
        return d if isinstance(d, str) else "cpu"


def check_own_keys(d: dict[str, Any], path: tuple[str, ...], error: Callable[..., Exception],
                   absolutize: Callable[..., None]) -> None:
    """A study file's own-loop table (``[base]`` or a variant): no ``seed`` (ablab's [study] seeds),
    ``train`` a reference (its file made absolute by ``absolutize``, as for models), ``command`` a list of
    strings whose ``{key}`` placeholders are well formed (checked against the merged config later)."""

    if "seed" in d:
        raise error((*path, "seed"), "set the seeds in [study] seeds")
    if "train" in d and not in_process_only(str(d["train"])):
        if not is_reference(d["train"]):
            raise error((*path, "train"), f"expected 'file.py:function' or 'package.module:function', "
                        f"got {str(d['train'])[:60]!r}")
        absolutize(d, path, key="train")
    if "command" in d:
        c = d["command"]
        if not isinstance(c, list) or not c or not all(isinstance(p, str) for p in c):
            raise error((*path, "command"), f"expected a non-empty list of strings, got {str(c)[:60]}")
        try:
            placeholders(c)
        except ValueError as e:
            raise error((*path, "command"), f"not a valid {{key}} template: {e}") from None
    if not isinstance(d.get("description", ""), str):
        raise error((*path, "description"), f"expected a string, got {d['description']!r}")


# ------------------------------------------------------------------------------------------ the function form


def load_train(ref: str) -> Callable[..., Any]:
    """The user's ``train`` function, imported through the model-reference machinery (a file or a module
    the user named, never a store); refused unless callable with one parameter (``run``)."""

    fn = IN_PROCESS.get(ref) or load_reference(ref)
    if inspect.isclass(fn) or not callable(fn):
        raise UserError(f"{ref}: is a {type(fn).__name__}, not a function train(run)", key="train")
    try:
        sig = inspect.signature(fn)
        sig.bind(None)
    except (TypeError, ValueError):
        raise UserError(f"{ref}: train must take exactly one argument (run), its signature is "
                        f"{getattr(fn, '__name__', 'train')}{_sig(fn)}", key="train") from None
    return fn


def _sig(fn: Any) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)"


def register_in_process(fn: Callable[..., Any]) -> str:
    """A reference for a function passed as ``run_study(..., train=fn)``: its file when it has one (so
    worker processes import the same function); a notebook's (``__main__``) or a nested function's name
    is known to this process only, and its runs execute in this process (see :func:`in_process_only`)."""

    try:
        return reference_of(fn)
    except ModelRefError:  # defined inside a function: no other process can import it
        name = f"{IN_PROCESS_PREFIX}:{getattr(fn, '__qualname__', 'train')}"
        IN_PROCESS[name] = fn
        return name


def in_process_only(ref: str) -> bool:
    """Whether a train reference can be called only in this process (no worker can import it)."""
    return ref.startswith((IN_PROCESS_PREFIX + ":", "__main__:"))


class Run:
    """What ``train(run)`` receives: the run's config, seed and device, and where it records."""

    def __init__(self, config: dict[str, Any], seed: int, device: str, out_dir: str | Path,
                 emit_epoch: Callable[[dict[str, Any]], None]) -> None:
        self.config = dict(config)  # the merged configuration (base + variant + grid point), user keys included
        self.seed = seed
        self.device = device
        self.out_dir = Path(out_dir)
        self.history: list[dict[str, Any]] = []  # every epoch logged (restored ones first after a resume)
        self._restored: dict[int, dict[str, Any]] = {}
        self._emit_epoch = emit_epoch

    def log(self, epoch: int, **metrics: Any) -> None:
        """Record one epoch's metrics (any names; ``val_acc``, ``test_acc``, ``train_acc``, ``loss`` mean
        what they mean in ablab's report). Re-logging an epoch restored by :meth:`load_state` must give
        the same numbers (the run resumed exactly), else the run fails rather than mix two histories."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            raise ValueError(f"run.log: epoch must be a positive integer, got {epoch!r}")
        row = {"epoch": epoch, **{METRIC_ALIASES.get(k, k): _number(k, v) for k, v in metrics.items()}}
        if epoch in self._restored:
            if self._restored[epoch] != row:
                raise ValueError(f"run.log: epoch {epoch} was recorded before the resume as "
                                 f"{self._restored[epoch]}, now {row}; the resumed run does not repeat it")
            return
        self.history = [h for h in self.history if h["epoch"] != epoch] + [row]
        self._emit_epoch(row)

    def save_state(self, obj: Any) -> None:
        """Keep ``obj`` (model and optimizer state dicts, the epoch, ...) so a killed run resumes from it;
        written atomically into the run's folder, with the random generators' states and the history."""
        import torch

        self.out_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.out_dir / (STATE_FILE + ".tmp")
        torch.save({"state": obj, "history": self.history, "rng": _rng_state()}, tmp)
        os.replace(tmp, self.out_dir / STATE_FILE)

    def load_state(self) -> Any:
        """The object of the last :meth:`save_state` of this run (restoring the random generators as they
        were then), or None on a fresh run."""
        path = self.out_dir / STATE_FILE
        if not path.is_file():
            return None
        import torch

        saved = torch.load(path, weights_only=False, map_location="cpu")  # written by this run's own code
        self.history = list(saved["history"])
        self._restored = {h["epoch"]: h for h in self.history}
        _set_rng_state(saved["rng"])
        return saved["state"]


def has_state(out_dir: str | Path) -> bool:
    """Whether an own-loop run folder holds a saved state to resume from (the runner keeps the folder)."""
    return (Path(out_dir) / STATE_FILE).is_file()


def _number(key: str, v: Any) -> Any:
    if hasattr(v, "item"):  # a 0-d tensor or NumPy scalar
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"run.log: {key} must be a number, got {type(v).__name__}")
    return float(v) if isinstance(v, float) else v


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (when installed) before the user's code runs."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _set_rng_state(s: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])


# ------------------------------------------------------------------------------------------ the script form


def command_line(command: list[str], config: dict[str, Any]) -> list[str]:
    """``command`` with each ``{key}`` replaced by the config's value (no shell; ``{{`` is a brace)."""
    return [str(part).format_map(_Values(config)) for part in command]


class _Values(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> Any:
        raise KeyError(key)


def placeholders(command: list[str]) -> list[str]:
    """The ``{key}`` names a command uses."""

    names = []
    for part in command:
        for _, name, _, _ in string.Formatter().parse(str(part)):
            if name is not None:
                names.append(name)
    return names


# ------------------------------------------------------------------------------------------ the worker side


def execute_own_run(spec: Any, emit: Callable[[str, dict[str, Any]], None]) -> None:
    """Run one own-loop spec (a :class:`~ablab.study.executor.RunSpec`: function or script) and report
    through ``emit(kind, payload)`` (the events of the executor interface); never raises."""
    config = dict(spec.config)
    seed = int(config.get("seed", 0))
    device = spec.device or config.get("device") or "cpu"
    t0 = time.time()
    try:
        emit("start", {"pid": os.getpid(), "host": socket.gethostname(), "threads": spec.threads})
        Path(spec.out_dir).mkdir(parents=True, exist_ok=True)
        run = _run_function if config.get("train") is not None else _run_script
        history = run(spec, emit, config, seed, device)
        emit("end", jsonable({
            "history": history, "final": history[-1] if history else None, "seeds": {"seed": seed},
            "wall_time_s": time.time() - t0, "threads": spec.threads, "status": "done"}))
    except BaseException as e:  # noqa: BLE001 - reported to the driver, which records the failure
        if isinstance(e, KeyboardInterrupt | SystemExit):
            raise
        emit("error", {"error": f"{type(e).__name__}: {e}",
                                             "traceback": getattr(e, "details", None) or traceback.format_exc()})


def _run_function(spec: Any, emit: Callable[[str, dict[str, Any]], None], config: dict[str, Any], seed: int,
                  device: str) -> list[dict[str, Any]]:
    fn = load_train(config["train"])
    try:
        import torch

        torch.set_num_threads(max(1, spec.threads))
    except ImportError:
        pass
    run = Run(config, seed, device, spec.out_dir, lambda row: emit("epoch", jsonable(row)))
    seed_everything(seed)
    fn(run)
    if not run.history:
        raise RuntimeError(f"{config['train']} returned without recording an epoch (run.log(epoch=..., ...))")
    return sorted(run.history, key=lambda h: h["epoch"])


class ScriptFailed(RuntimeError):
    """A script that exited with a non-zero status; ``details`` is its stderr."""

    def __init__(self, message: str, details: str) -> None:
        super().__init__(message)
        self.details = details


def _run_script(spec: Any, emit: Callable[[str, dict[str, Any]], None], config: dict[str, Any], seed: int,
                device: str) -> list[dict[str, Any]]:
    """Run the command; each stdout line that is a JSON object with an ``epoch`` is one epoch's metrics;
    other lines go to stdout.txt. stderr goes to stderr.txt; a non-zero exit fails the run with it."""
    out = Path(spec.out_dir)
    argv = command_line(list(config["command"]), config)
    history: dict[int, dict[str, Any]] = {}
    env = {**os.environ, "ABLAB_SEED": str(seed), "ABLAB_DEVICE": device, "ABLAB_RUN_DIR": str(out)}
    with open(out / STDERR_FILE, "wb") as err, open(out / STDOUT_FILE, "w") as other:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        assert proc.stdout is not None
        for line in proc.stdout:
            row = _metrics_line(line)
            if row is None:
                other.write(line)
                continue
            history[row["epoch"]] = row
            emit("epoch", jsonable(row))
        code = proc.wait()
    if code != 0:
        stderr = (out / STDERR_FILE).read_text(errors="replace")
        tail = stderr[-MAX_ERROR_CHARS:]
        last = tail.strip().splitlines()[-1] if tail.strip() else "no stderr"
        raise ScriptFailed(f"{argv[0]} exited with status {code}: {last}", f"stderr:\n{tail}")
    if not history:
        raise RuntimeError(f"{' '.join(argv)} printed no metrics (one JSON object per epoch on stdout, "
                           'e.g. {"epoch": 1, "val_acc": 0.87})')
    return [history[k] for k in sorted(history)]


def _metrics_line(line: str) -> dict[str, Any] | None:
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or isinstance(obj.get("epoch"), bool) or not isinstance(obj.get("epoch"), int):
        return None
    row = {"epoch": obj["epoch"]}
    for k, v in obj.items():
        if k != "epoch" and isinstance(v, int | float) and not isinstance(v, bool):
            row[METRIC_ALIASES.get(k, k)] = v
    return row
