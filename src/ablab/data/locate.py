"""Where a dataset's files are: ``$ABLAB_DATA``, then the user cache directory, then system locations
(Debian's ``dataset-fashion-mnist`` installs to ``/usr/share/datasets/fashion-mnist/``). Each root is
tried as ``ROOT/<name>`` and as ``ROOT`` itself.

An explicit ``data_dir`` (``--data-dir``) is a promise: it is the only place searched. When the data is
not there, or only partly, the error says so — ablab never quietly falls back to another copy.

Only finding happens here (stat calls, no reading); when nothing is found, :func:`not_found_error`
builds the one error that lists every place looked and the commands that fix it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ablab.data.catalog import CifarFiles, DatasetSpec, IdxFiles
from ablab.data.cifar import BIN_DIR, PY_DIR
from ablab.data.errors import DataError

DATA_ENV = "ABLAB_DATA"
# system-wide dataset roots, searched last; tests replace this list
SYSTEM_ROOTS: list[Path] = [Path("/usr/share/datasets"), Path("/usr/local/share/datasets")]


def user_cache_dir() -> Path:
    """ablab's per-user cache: ``$XDG_CACHE_HOME/ablab`` (default ``~/.cache/ablab``; macOS
    ``~/Library/Caches/ablab``; Windows ``%LOCALAPPDATA%\\ablab``)."""
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "ablab"
    if sys.platform == "darwin" and not os.environ.get("XDG_CACHE_HOME"):
        return Path.home() / "Library" / "Caches" / "ablab"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ablab"


def search_dirs(name: str, data_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """(how, folder) pairs in search order, without duplicates; only ``data_dir`` when it is given."""
    out: list[tuple[str, Path]] = []
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        return [("--data-dir", d / name), ("--data-dir", d)]
    env = os.environ.get(DATA_ENV)
    if env:
        e = Path(env).expanduser()
        out += [(DATA_ENV, e / name), (DATA_ENV, e)]
    out.append(("user cache", user_cache_dir() / name))
    out += [("system", root / name) for root in SYSTEM_ROOTS]
    seen: set[Path] = set()
    unique = []
    for how, p in out:
        if p not in seen:
            seen.add(p)
            unique.append((how, p))
    return unique


def target_dir(name: str, data_dir: str | Path | None = None) -> Path:
    """Where ``fetch`` writes: ``data_dir/<name>``, else ``$ABLAB_DATA/<name>``, else the user cache."""
    if data_dir is not None:
        return Path(data_dir).expanduser() / name
    env = os.environ.get(DATA_ENV)
    return (Path(env).expanduser() if env else user_cache_dir()) / name


@dataclass(frozen=True)
class Found:
    """A complete copy of a dataset's files."""

    dir: Path
    how: str  # "--data-dir", "ABLAB_DATA", "user cache" or "system"
    fmt: str  # "idx", "cifar-bin", "cifar-py", "cifar-bin-archive", "cifar-py-archive"
    files: dict[str, Path] = field(default_factory=dict)  # role (e.g. "train_images", "data_batch_1") -> path

    def identity(self) -> tuple[tuple[str, str, int, int], ...]:
        """(role, path, size, mtime) of every file: the in-process cache key, so a replaced file is reread."""
        out = []
        for role, p in sorted(self.files.items()):
            st = p.stat()
            out.append((role, str(p), st.st_size, st.st_mtime_ns))
        return tuple(out)


def find_in_dir(spec: DatasetSpec, folder: Path, how: str = "") -> tuple[Found | None, str]:
    """A complete copy in ``folder``, or None and a note on what was there (for the error message)."""
    if not folder.is_dir():
        return None, "no such folder" if not folder.exists() else "not a folder"
    if isinstance(spec.files, IdxFiles):
        files: dict[str, Path] = {}
        missing = []
        for role, f in spec.files.all().items():
            path = next((folder / n for n in (f.stem, f.stem + ".gz") if (folder / n).is_file()), None)
            if path is None:
                missing.append(f.stem + "[.gz]")
            else:
                files[role] = path
        if not missing:
            return Found(folder, how, "idx", files), "complete"
        if not files:
            return None, "none of the files"
        return None, f"incomplete: found {len(files)} of 4 files; missing {', '.join(missing)}"
    if isinstance(spec.files, CifarFiles):
        c = spec.files
        batches = c.train_batches + c.test_batches
        partial = []
        for sub, fmt, suffix in ((BIN_DIR, "cifar-bin", ".bin"), (".", "cifar-bin", ".bin"),
                                 (PY_DIR, "cifar-py", "")):
            d = folder / sub
            paths = {b: d / (b + suffix) for b in batches}
            present = [b for b, p in paths.items() if p.is_file()]
            if len(present) == len(batches):
                return Found(folder, how, fmt, paths), ""
            if present:
                partial.append(f"{sub}/ has {len(present)} of {len(batches)} batch files")
        for arch, fmt in ((c.binary_archive, "cifar-bin-archive"), (c.python_archive, "cifar-py-archive")):
            if (folder / arch.name).is_file():
                return Found(folder, how, fmt, {"archive": folder / arch.name}), ""
        return None, "; ".join(partial) or "none of the files"
    return None, "generated in memory"


def locate(spec: DatasetSpec, data_dir: str | Path | None = None) -> Found | None:
    """The first complete copy in search order, or None."""
    for how, folder in search_dirs(spec.name, data_dir):
        found, _ = find_in_dir(spec, folder, how)
        if found is not None:
            return found
    return None


def expected_files_text(spec: DatasetSpec) -> str:
    if isinstance(spec.files, IdxFiles):
        return ", ".join(f.name for f in spec.files.all().values()) + " (plain or .gz)"
    if isinstance(spec.files, CifarFiles):
        return (f"{BIN_DIR}/ (data_batch_1..5.bin, test_batch.bin) or {spec.files.binary_archive.name}, "
                f"or {PY_DIR}/ or {spec.files.python_archive.name}")
    return ""


def not_found_error(spec: DatasetSpec, data_dir: str | Path | None = None,
                    download_error: str | None = None) -> DataError:
    """The one error for a dataset that is nowhere: every place looked (and what was there), why a
    download did not help, and the exact commands that fix it."""
    lines = [f"dataset '{spec.name}' not found. Looked in, in this order:" if data_dir is None else
             f"dataset '{spec.name}' not found in --data-dir {data_dir} (with --data-dir no other place is "
             "searched). Looked in:"]
    for how, folder in search_dirs(spec.name, data_dir):
        _, note = find_in_dir(spec, folder)
        lines.append(f"  {how:<11} {folder}  ({note})")
    if download_error:
        lines.append(f"Download failed: {download_error}")
    lines.append("Fix it with one of:")
    if spec.apt_package:
        lines.append(f"  sudo apt-get install {spec.apt_package}      # Debian/Ubuntu: installs to "
                     f"/usr/share/datasets/{spec.name}/")
    where = target_dir(spec.name, data_dir)
    lines.append(f"  ablab data fetch {spec.name}"
                 + (f" --data-dir {data_dir}" if data_dir is not None else "")
                 + f"      # downloads to {where} and verifies SHA-256 (needs network; "
                 f"mirror: --mirror URL or $ABLAB_DATA_MIRROR)")
    lines.append(f"  or copy {expected_files_text(spec)} into one of the folders above "
                 f"(or point --data-dir / ${DATA_ENV} at them)")
    return DataError("\n".join(lines))
