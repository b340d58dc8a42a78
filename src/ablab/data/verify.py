"""SHA-256 checks of a dataset's files against the pinned sums in the registry.

IDX files are checked on their decompressed content (see ``registry.py`` for why); archives on their
own bytes. CIFAR-10 batches extracted by ``ablab data fetch`` are checked against the SHA256SUMS
manifest written from the verified archive; batches a user extracted by hand have no pinned sum and are
checked structurally only (counts, label range, class balance) — ``verify`` says which.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ablab.data.errors import DataError
from ablab.data.idx import gunzip_if_needed
from ablab.data.locate import Found
from ablab.data.registry import CifarFiles, DataFile, DatasetSpec, IdxFiles

MANIFEST = "SHA256SUMS"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def check_content(content: bytes, path: str | Path, f: DataFile) -> str:
    """Check already-read (decompressed) IDX content against the pinned sum; returns the hex digest."""
    digest = sha256_bytes(content)
    if digest != f.sha256:
        raise DataError(f"{path}: SHA-256 mismatch: the content hashes to {digest}, expected {f.sha256} "
                        f"({f.stem}) — the file is damaged or is not the official one; delete it and run "
                        "'ablab data fetch'")
    return digest


def check_file(path: str | Path, f: DataFile, shown_as: str | None = None) -> str:
    """Verify one file on disk against ``f``; returns the matching digest or raises DataError naming
    ``shown_as`` (e.g. the URL a temporary download came from) or the path."""
    label = shown_as or str(path)
    raw = Path(path).read_bytes()
    digest = sha256_bytes(raw)
    if not f.hashes_content:
        if digest != f.sha256:
            raise DataError(f"{label}: SHA-256 mismatch: got {digest}, expected {f.sha256} ({f.name})")
        return digest
    if f.download_sha256 is not None and digest == f.download_sha256:
        return digest
    return check_content(gunzip_if_needed(raw, label, named_gz=Path(path).suffix == ".gz"), label, f)


@dataclass(frozen=True)
class Check:
    """The outcome of checking one file."""

    role: str  # e.g. "train_images", "data_batch_1", "archive"
    path: Path
    ok: bool
    detail: str  # the digest that matched, or what went wrong, or why there is no pinned sum


def manifest_digest(path: Path) -> str | None:
    """The SHA-256 that ``path``'s folder's SHA256SUMS (written by ``fetch``) records for it, if any."""
    m = path.parent / MANIFEST
    if not m.is_file():
        return None
    for line in m.read_text().splitlines():
        digest, _, name = line.strip().partition("  ")
        if name == path.name and not line.startswith("#"):
            return digest
    return None


def verify_found(spec: DatasetSpec, found: Found) -> list[Check]:
    """Check every file of a located copy; never raises for a mismatch (each Check says)."""
    checks: list[Check] = []
    if isinstance(spec.files, IdxFiles):
        files = spec.files.all()
        for role, path in found.files.items():
            try:
                checks.append(Check(role, path, True, "sha256 " + check_file(path, files[role])))
            except DataError as e:
                checks.append(Check(role, path, False, str(e)))
    elif isinstance(spec.files, CifarFiles):
        if found.fmt.endswith("-archive"):
            f = spec.files.binary_archive if found.fmt == "cifar-bin-archive" else spec.files.python_archive
            path = found.files["archive"]
            try:
                checks.append(Check("archive", path, True, "sha256 " + check_file(path, f)))
            except DataError as e:
                checks.append(Check("archive", path, False, str(e)))
        else:
            for role, path in found.files.items():
                pinned = manifest_digest(path)
                if pinned is None:
                    checks.append(Check(role, path, True, "no pinned checksum (extracted by hand): "
                                        "structure checked only"))
                    continue
                digest = sha256_file(path)
                ok = digest == pinned
                checks.append(Check(role, path, ok, f"sha256 {digest}" if ok else
                                    f"{path}: SHA-256 mismatch: got {digest}, expected {pinned} "
                                    f"(from {path.parent / MANIFEST})"))
    return checks
