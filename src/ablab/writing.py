"""Writing files so that a full disk, a read-only folder or a kill never leaves a partial file, and one
plain sentence for every operating-system error a user can meet (read-only file system, disk full,
permission denied, ...).

:func:`write_atomic` writes to a temporary file beside the target and renames it into place only when
every byte is on disk; on any failure the temporary file is removed, so the target is either the old
file or the complete new one — never a truncated PNG or half a JSON document.
"""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

# errno -> (what happened, what to do)
_ADVICE: dict[int, tuple[str, str]] = {
    errno.EROFS: ("read-only file system", "choose a writable folder (e.g. --out DIR)"),
    errno.ENOSPC: ("disk full: no space left on device", "free some space or choose a folder on another disk"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or choose a folder on another disk"),
    errno.EACCES: ("permission denied", "check the folder's permissions or choose another folder"),
    errno.EPERM: ("operation not permitted", "check the folder's permissions or choose another folder"),
    errno.ENOENT: ("no such file or directory", "check the path"),
    errno.ENOTDIR: ("a part of the path is not a folder", "check the path"),
    errno.EISDIR: ("is a folder, expected a file", "check the path"),
    errno.EEXIST: ("already exists", "remove it or choose another path"),
    errno.ENAMETOOLONG: ("file name too long", "use shorter names (variant, study or folder names)"),
    errno.EMFILE: ("too many open files", "raise the limit (ulimit -n) or use fewer workers"),
}


def os_error_message(e: OSError, path: str | Path | None = None) -> str:
    """``PATH: what happened (Errno N); what to do`` for an OSError (``path`` when ``e`` names none)."""
    where = e.filename if e.filename is not None else path
    what, todo = _ADVICE.get(e.errno or -1, (e.strerror or str(e), ""))
    code = f" (Errno {e.errno})" if e.errno else ""
    head = f"{where}: " if where is not None else ""
    return f"{head}{what}{code}" + (f"; {todo}" if todo else "")


def sqlite_error_message(e: sqlite3.Error, path: str | Path | None = None) -> str:
    """One sentence for an SQLite error on the store at ``path``."""
    text = str(e)
    low = text.lower()
    head = f"{path}: " if path is not None else "study store: "
    if "disk is full" in low or "disk i/o error" in low:
        return (f"{head}disk full or I/O error while writing the study store ({text}); free some space and "
                "run the same command again (finished runs are kept)")
    if "readonly" in low or "read-only" in low:
        return f"{head}the store is read-only ({text}); copy the study folder somewhere writable"
    if "locked" in low or "busy" in low:
        return f"{head}the store is locked by another process ({text}); wait for it to finish and retry"
    if "unable to open" in low:
        return f"{head}cannot open the store ({text}); check that the folder exists and is readable"
    if "not a database" in low or "malformed" in low:
        return f"{head}not a readable ablab study store ({text})"
    return f"{head}SQLite error: {text}"


def _umask() -> int:
    """The process umask: read from /proc on Linux (no side effect); elsewhere set and put straight back
    (the only portable way to read it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def usual_mode(target: int | str | Path, folder: bool = False) -> None:
    """Give a temporary file or folder (``mkstemp``/``mkdtemp`` make them owner-only: 0600 / 0700) the
    permissions an ordinary ``open``/``mkdir`` would have (0666 / 0777 less the umask), before it is
    renamed into place — so reports, checkpoints and downloaded data can be read by whoever may read
    the folder. ``target``: an open file descriptor or a path."""
    mode = (0o777 if folder else 0o666) & ~_umask()
    if isinstance(target, int):
        os.fchmod(target, mode)
    else:
        os.chmod(target, mode)


def write_atomic(path: str | Path, data: bytes | str, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` through a temporary file + rename; on failure nothing partial remains
    (the OSError propagates, naming ``path``)."""
    path = Path(path)
    blob = data.encode(encoding) if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        usual_mode(fd)
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.filename is None:
            e.filename = str(path)
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_tensors(tensors: dict[str, Any], path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """``safetensors.torch.save_file`` with its I/O errors as the OSError they are (a full disk is one
    ``error:`` line naming the file, not a ``SafetensorError``), and no partial file left on failure."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    path = Path(path)
    try:
        save_file(tensors, str(path), metadata=metadata)
    except SafetensorError as e:
        path.unlink(missing_ok=True)
        code = re.search(r"os error (\d+)", str(e))
        if code is None:
            raise
        raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path)) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
