"""What a run was made of, beyond its config: the SHA-256 of your model's source file and of your own data
files. The config hash already makes a run of other settings (``model_args`` included) a different run;
these catch the code and the data changing under an unchanged config. A study records them with every
finished run and refuses to mix runs made from other code or data with new ones (``--rerun-changed``
re-runs those). Presets, specs and the built-in datasets need none: the spec is in the config, and the
built-in datasets are SHA-pinned.

What is hashed: the file a model reference names (``mymodel.py``, or ``pkg/mod.py`` for ``pkg.mod:Net``),
not the files it imports; for your own training loop, the file ``train`` names or the files ``command``
names; every file an ``idx:``/``npz:``/``folder:`` source reads. Hashing reads files, it imports nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
from pathlib import Path
from typing import Any

from ablab.models.resolve import is_reference, shown, source_file, source_sha256
from ablab.study.ownloop import IN_PROCESS, OwnConfig
from ablab.train.config import TrainConfig

CHUNK = 1 << 20


def _data_sha256(dataset: str) -> str | None:
    from ablab.data.source_registry import is_source, parse_source, source_files

    if not is_source(dataset):
        return None
    kind, path, _ = parse_source(dataset)
    h = hashlib.sha256()
    for f in sorted(source_files(kind, path)):
        h.update(str(Path(f).relative_to(path) if Path(f).is_relative_to(path) else Path(f).name).encode() + b"\0")
        with open(f, "rb") as fh:
            while chunk := fh.read(CHUNK):
                h.update(chunk)
    return h.hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _own_fingerprint(config: OwnConfig) -> dict[str, str]:
    """An own loop's code: the file its ``train`` reference names (a function known only to this process:
    its source text), or every file a ``command`` argument names (``train.py`` in ``["python", "train.py"]``)."""
    values = config.values
    fp: dict[str, str] = {}
    if isinstance(ref := values.get("train"), str):
        fn = IN_PROCESS.get(ref)
        if fn is not None:
            with contextlib.suppress(OSError, TypeError):  # no source to read (a builtin, a REPL function)
                fp["model_source"] = hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()
        elif sha := source_sha256(ref):
            fp["model_source"] = sha
    elif isinstance(cmd := values.get("command"), list):
        h = hashlib.sha256()
        files = [Path(a) for a in cmd[1:] if isinstance(a, str) and "{" not in a and Path(a).is_file()]
        for f in files:
            h.update(f"{f}\0{_file_sha256(f)}\0".encode())
        if files:
            fp["model_source"] = h.hexdigest()
    return fp


def fingerprint(config: TrainConfig | OwnConfig, memo: dict[Any, dict[str, str]] | None = None) -> dict[str, str]:
    """``{"model_source": sha, "data": sha}`` for what applies to ``config`` (memoized per model/dataset)."""
    if isinstance(config, OwnConfig):
        return _own_fingerprint(config)
    key = (config.model, config.dataset)
    if memo is not None and key in memo:
        return memo[key]
    fp: dict[str, str] = {}
    if is_reference(config.model) and (sha := source_sha256(config.model)):
        fp["model_source"] = sha
    if (sha := _data_sha256(config.dataset)) is not None:
        fp["data"] = sha
    if memo is not None:
        memo[key] = fp
    return fp


def what_differs(recorded: dict[str, str], current: dict[str, str], config: TrainConfig | OwnConfig) -> list[str]:
    """What changed between a recorded and a current fingerprint ('another mymodel.py', 'other files of npz:...')."""
    out = []
    if isinstance(config, OwnConfig):
        if recorded.get("model_source") != current.get("model_source"):
            ref = config.values.get("train")
            f = source_file(ref) if isinstance(ref, str) and ref not in IN_PROCESS else None
            out.append(f"another {f.name if f is not None else 'training code'}")
        return out
    if recorded.get("model_source") != current.get("model_source"):
        f = source_file(config.model) if is_reference(config.model) else None
        out.append(f"another {f.name if f is not None else shown(config.model)}")
    if recorded.get("data") != current.get("data"):
        out.append(f"other files of {config.dataset}")
    return out
