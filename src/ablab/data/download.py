"""Downloading a dataset's official files: mirrors tried in order, progress through a callback, SHA-256
verification, and an atomic write — bytes go to a temporary file in the target folder and are renamed
into place only after the checksum matched, so an interrupted or corrupted download never leaves a file
that could pass as data.

The base URL is configurable (``mirror=`` / ``--mirror`` / ``$ABLAB_DATA_MIRROR``) — that is how the
tests serve a tiny dataset from ``http://127.0.0.1`` instead of touching the internet.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ablab.data.catalog import CifarFiles, DataFile, DatasetSpec, IdxFiles, get_spec
from ablab.data.cifar import BIN_DIR, max_batch_bytes, read_archive_members
from ablab.data.errors import DataError
from ablab.data.locate import Found, find_in_dir, locate, target_dir
from ablab.data.verify import MANIFEST, check_file, content_limit, verify_found
from ablab.writing import usual_mode

CHUNK = 1 << 20  # bytes per read: 1 MiB
TIMEOUT_S = 30.0  # seconds without data before a download is abandoned


# progress(file_name, bytes_done, bytes_total or None): called as bytes arrive; the CLI draws the bar
DownloadProgress = Callable[[str, int, int | None], None]


def _advance(progress: DownloadProgress | None, label: str, total: int | None) -> Callable[[int], None]:
    """An ``advance(n)`` that reports the running byte count to ``progress`` (a no-op without one)."""
    if not progress:  # None (or False): nobody is drawing
        return lambda n: None
    done = [0]
    progress(label, 0, total)

    def advance(n: int) -> None:
        done[0] += n
        progress(label, done[0], total)

    return advance


def download_file(url: str, dest: str | Path, expected: DataFile, *, progress: DownloadProgress | None = None,
                  timeout: float = TIMEOUT_S, max_bytes: int | None = None, max_content: int | None = None) -> Path:
    """Download ``url`` to ``dest`` atomically and verify it against ``expected``'s SHA-256.

    Bounded: a server declaring, or sending, more than ``max_bytes`` is cut off at the first byte beyond
    it, and the checksum of a compressed file inflates at most ``max_content`` bytes (see
    :func:`download_caps`). Raises DataError naming the URL on any failure (HTTP error, refused or
    dropped connection, short read, too large, checksum mismatch); ``dest`` is then untouched and no
    temporary file is left behind.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        usual_mode(fd)
        req = urllib.request.Request(url, headers={"User-Agent": "ablab (dataset fetch)"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            declared = int(resp.headers.get("Content-Length") or 0) or None
            too_big = f"more than the {max_bytes or 0:,} bytes {expected.name} can have; refusing it"
            if max_bytes is not None and declared is not None and declared > max_bytes:
                raise DataError(f"{url}: the server announces {declared:,} bytes, {too_big}")
            written = 0
            advance = _advance(progress, dest.name, declared or expected.size)
            while chunk := resp.read(CHUNK):
                written += len(chunk)
                if max_bytes is not None and written > max_bytes:
                    raise DataError(f"{url}: the server sent {too_big}")
                out.write(chunk)
                advance(len(chunk))
            if declared is not None and written != declared:
                raise DataError(f"{url}: connection dropped after {written:,} of {declared:,} bytes")
            out.flush()
            os.fsync(out.fileno())
        check_file(tmp, expected, shown_as=url, max_content=max_content)
        os.replace(tmp, dest)  # atomic on POSIX: dest is either absent/old or the complete, verified file
        return dest
    except DataError:
        raise
    except urllib.error.HTTPError as e:
        raise DataError(f"{url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise DataError(f"{url}: {e.reason}") from None
    except http.client.IncompleteRead as e:
        raise DataError(f"{url}: connection dropped after {len(e.partial):,} bytes of the last read "
                        f"({e.expected:,} more expected)") from None
    except TimeoutError:
        raise DataError(f"{url}: no data for {timeout:g} s (timed out)") from None
    except (OSError, http.client.HTTPException) as e:
        raise DataError(f"{url}: {type(e).__name__}: {e}") from None
    finally:
        tmp.unlink(missing_ok=True)


def download_caps(spec: DatasetSpec, f: DataFile) -> tuple[int | None, int | None]:
    """(most bytes to download, most bytes its content may inflate to), from the registry entry: the
    published size when known; else, for a gzip IDX file, its content size plus gzip's worst-case
    overhead (stored blocks: 5 bytes per 64 KiB, plus headers)."""
    content = content_limit(spec, f)
    if f.size is not None:
        return f.size, content
    if content is not None:
        return content + content // 10_000 + 1024, content
    return None, None


def download_from_mirrors(spec: DatasetSpec, f: DataFile, dest: Path, *, mirror: str | None = None,
                          progress: DownloadProgress | None = None) -> Path:
    """Try each mirror in turn; one DataError listing every URL's failure if none worked."""
    failures = []
    max_bytes, max_content = download_caps(spec, f)
    for base in spec.download_mirrors(mirror):
        url = base.rstrip("/") + "/" + f.name
        try:
            return download_file(url, dest, f, progress=progress, max_bytes=max_bytes, max_content=max_content)
        except DataError as e:
            failures.append(str(e))
    raise DataError(f"could not download {f.name}: " + "; ".join(failures))


def _extract_cifar(archive: Path, folder: Path, files: CifarFiles) -> Path:
    """Write the binary batches out of a verified archive into ``folder/cifar-10-batches-bin`` (via a
    temporary folder and a rename), with a SHA256SUMS manifest of what was written. Only the expected
    regular-file members are read; nothing in the archive chooses a path on disk."""
    names = [f"{b}.bin" for b in files.train_batches + files.test_batches]
    members = read_archive_members(archive, {f"{BIN_DIR}/{n}": n for n in names}, max_batch_bytes(files))
    final = folder / BIN_DIR
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f".{BIN_DIR}."))
    try:
        usual_mode(tmp, folder=True)
        lines = []
        for n in names:
            (tmp / n).write_bytes(members[n])
            lines.append(f"{hashlib.sha256(members[n]).hexdigest()}  {n}\n")
        (tmp / MANIFEST).write_text(f"# written by ablab from {archive.name} (SHA-256 verified)\n"
                                    + "".join(lines))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _download_all(spec: DatasetSpec, folder: Path, *, mirror: str | None, force: bool,
                  progress: DownloadProgress | None) -> None:
    if isinstance(spec.files, IdxFiles):
        for f in spec.files.all().values():
            dest = folder / f.name
            if not force and dest.is_file():
                with contextlib.suppress(DataError):
                    check_file(dest, f, max_content=content_limit(spec, f))
                    continue
            download_from_mirrors(spec, f, dest, mirror=mirror, progress=progress)
    elif isinstance(spec.files, CifarFiles):
        arch = spec.files.binary_archive
        dest = download_from_mirrors(spec, arch, folder / arch.name, mirror=mirror, progress=progress)
        _extract_cifar(dest, folder, spec.files)
        dest.unlink()  # 170 MB; the manifest written from the verified archive keeps the checksums


def fetch(name: str, data_dir: str | Path | None = None, *, mirror: str | None = None, force: bool = False,
          progress: DownloadProgress | None = None) -> tuple[Found, bool]:
    """Make sure ``name`` is present and verified: (where it is, whether anything was downloaded).

    Without ``force`` an existing complete copy (anywhere in the search order) that passes its checksums
    is kept. Downloads go to ``data_dir/<name>``, else ``$ABLAB_DATA/<name>``, else the user cache.
    """
    spec = get_spec(name)
    if spec.files is None:
        raise DataError(f"'{spec.name}' is generated in memory; there is nothing to fetch")
    if not force:
        found = locate(spec, data_dir)
        if found is not None and all(c.ok for c in verify_found(spec, found)):
            return found, False
    folder = target_dir(spec.name, data_dir)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create {folder}: {e.strerror or e}") from None
    try:
        _download_all(spec, folder, mirror=mirror, force=force, progress=progress)
    except BaseException:
        if created:  # a failed first fetch leaves no empty folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    found2, note = find_in_dir(spec, folder, "fetched")
    if found2 is None:  # pragma: no cover - defensive: we just wrote every file
        raise DataError(f"{folder}: files incomplete after download ({note})")
    return found2, True
