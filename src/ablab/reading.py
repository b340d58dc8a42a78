"""Reading the small text files users hand to ablab (spec files, ``explain --file``, graph files):
explicit UTF-8, a stated size limit, and errors that name the file and the byte offset."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ablab.errors import UserError

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
MAX_TEXT_BYTES = 64 * 2**20  # 64 MiB: far beyond any spec or worked example


def read_utf8(path: str | Path, max_bytes: int = MAX_TEXT_BYTES, error: type[UserError] = UserError,
              hint: str = "") -> str:
    """The file's text, decoded as UTF-8 (a BOM is dropped). Otherwise ``error`` naming the file, and for
    bad bytes the line, the byte and its offset; ``hint`` (what the file should be) ends that message.
    The one reader of ablab's small text files: specs, worked examples, graphs, study files, checkpoint
    and download manifests."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise error(f"{p}: {size:,} bytes is more than the limit of {max_bytes:,} for this file")
        data = p.read_bytes()
    except FileNotFoundError:
        raise error(f"{p}: no such file") from None
    except IsADirectoryError:
        raise error(f"{p}: is a folder, expected a file") from None
    except OSError as e:
        raise error(f"{p}: cannot read: {e.strerror or e}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        why = f"; {hint}" if hint else f" ({e.reason})"
        raise error(f"{p}:{line}: not UTF-8 text: byte 0x{data[e.start]:02x} at byte offset {e.start:,}{why}") from None


MAX_JSON_DEPTH = 32  # ablab's JSON files nest a few levels; deeper input is refused before parsing


def load_json(content: str, where: str, error: type[UserError] = UserError, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` with errors naming the place (``where:line:col``), and nesting refused past
    ``max_depth`` (the standard parser recurses, so very deep input would exhaust the stack)."""
    depth = deepest = 0
    for ch in _STRINGS.sub('""', content):  # brackets outside strings only
        if ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > max_depth:
                    raise error(f"{where}: JSON nested deeper than {max_depth} levels")
        elif ch in "]}":
            depth -= 1
    try:
        return json.loads(content)
    except json.JSONDecodeError as e:
        raise error(f"{where}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    except (ValueError, RecursionError) as e:  # e.g. an integer with more digits than Python converts
        raise error(f"{where}: invalid JSON: {e}") from None
