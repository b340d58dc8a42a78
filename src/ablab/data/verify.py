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

from ablab.data.catalog import CifarFiles, DataFile, DatasetSpec, IdxFiles
from ablab.data.errors import DataError
from ablab.data.idx import CHUNK, open_content
from ablab.data.locate import Found
from ablab.reading import read_utf8

MANIFEST = "SHA256SUMS"
MAX_MANIFEST_BYTES = 1 << 20  # one line per data file


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
                        f"'ablab data fetch'. If these are your own files in this format, load them as "
                        f"--data idx:{Path(path).parent} (your own data is validated, not pinned)")
    return digest


def idx_data_bytes(spec: DatasetSpec, role: str) -> int:
    """The data bytes (after the header) of an IDX file of ``spec``: count × H × W for images, count for
    labels — the cap on how much of that file is ever decompressed."""
    count = spec.n_train if role.startswith("train") else spec.n_test
    return count * spec.shape[1] * spec.shape[2] if role.endswith("images") else count


def content_limit(spec: DatasetSpec, f: DataFile) -> int | None:
    """The most bytes ``f``'s (decompressed) content may have: header + data for an IDX file, the
    published size for an archive when known."""
    if isinstance(spec.files, IdxFiles):
        for role, g in spec.files.all().items():
            if g == f:
                return (16 if role.endswith("images") else 8) + idx_data_bytes(spec, role)
    return f.size


def check_file(path: str | Path, f: DataFile, shown_as: str | None = None, max_content: int | None = None) -> str:
    """Verify one file on disk against ``f``; returns the matching digest or raises DataError naming
    ``shown_as`` (e.g. the URL a temporary download came from) or the path. Hashing streams: a content
    check decompresses at most ``max_content`` bytes (+1 to notice that there is more)."""
    label = shown_as or str(path)
    digest = sha256_file(path)
    if not f.hashes_content:
        if digest != f.sha256:
            raise DataError(f"{label}: SHA-256 mismatch: got {digest}, expected {f.sha256} ({f.name})")
        return digest
    if f.download_sha256 is not None and digest == f.download_sha256:
        return digest
    h, n = hashlib.sha256(), 0
    with open_content(path, label) as stream:
        while chunk := stream.read(CHUNK):
            n += len(chunk)
            if max_content is not None and n > max_content:
                raise DataError(f"{label}: decompresses to more than the {max_content:,} bytes {f.stem} has — "
                                "not the official file (stopped inflating there); delete it and run "
                                "'ablab data fetch'")
            h.update(chunk)
    digest = h.hexdigest()
    if digest != f.sha256:
        raise DataError(f"{label}: SHA-256 mismatch: the content hashes to {digest}, expected {f.sha256} "
                        f"({f.stem}) — the file is damaged or is not the official one; delete it and run "
                        "'ablab data fetch'")
    return digest


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
    text = read_utf8(m, MAX_MANIFEST_BYTES, DataError, "delete the folder and fetch the dataset again")
    for line in text.splitlines():
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
                cap = content_limit(spec, files[role])
                checks.append(Check(role, path, True, "sha256 " + check_file(path, files[role], max_content=cap)))
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
