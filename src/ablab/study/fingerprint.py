"""What a run was made of, beyond its config: the SHA-256 of your model's source file and of your own data
files. The config hash already makes a run of other settings (``model_args`` included) a different run;
these catch the code and the data changing under an unchanged config. A study records them with every
finished run and refuses to mix runs made from other code or data with new ones (``--rerun-changed``
re-runs those). Presets, specs and the built-in datasets need none: the spec is in the config, and the
built-in datasets are SHA-pinned.

What is hashed: the file a model reference names (``mymodel.py``, or ``pkg/mod.py`` for ``pkg.mod:Net``),
not the files it imports; every file an ``idx:``/``npz:``/``folder:`` source reads. Hashing reads files,
it imports nothing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ablab.models.resolve import is_reference, shown, source_file, source_sha256
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


def fingerprint(config: TrainConfig, memo: dict[Any, dict[str, str]] | None = None) -> dict[str, str]:
    """``{"model_source": sha, "data": sha}`` for what applies to ``config`` (memoized per model/dataset)."""
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


def what_differs(recorded: dict[str, str], current: dict[str, str], config: TrainConfig) -> list[str]:
    """What changed between a recorded and a current fingerprint ('another mymodel.py', 'other files of npz:...')."""
    out = []
    if recorded.get("model_source") != current.get("model_source"):
        f = source_file(config.model) if is_reference(config.model) else None
        out.append(f"another {f.name if f is not None else shown(config.model)}")
    if recorded.get("data") != current.get("data"):
        out.append(f"other files of {config.dataset}")
    return out
